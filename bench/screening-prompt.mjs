// The 4 kB prompt of bench/screening.mjs (mixed prose, code, an e-mail address and a key).
const parts = [
  'Please review the following deployment notes and summarise the risks for the team.',
  'The service reads its configuration from environment variables; the database URL and the cache host are set per region.',
  '```python\ndef retry(fn, attempts=3):\n    for i in range(attempts):\n        try:\n            return fn()\n        except TimeoutError:\n            continue\n```',
  'Contact the on-call engineer at oncall@example.com if the error rate goes above 2% for five minutes.',
  'Les journaux montrent des délais de 250 ms au 99e centile; nous devons vérifier le pool de connexions.',
  'Rollout happens in three waves: canary (5%), half (50%), and everyone, with a pause of 30 minutes between waves.',
  'The old token ghp_R8aZk2Lq9Xw4Tn7Vb1Mc5Hd3Jf6Gs0Py2Ue8 was revoked yesterday and must not be reused.',
];
export function benchPrompt(chars = 4096) {
  let prompt = '';
  for (let i = 0; prompt.length < chars; i++) prompt += `${parts[i % parts.length]}\n\n`;
  return prompt.slice(0, chars);
}
