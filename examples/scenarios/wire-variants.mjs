// Rewrites a scenario trace's chat requests into the other wire shapes clients use, so the
// detectors are checked on traffic the generators do not send themselves: a share of the chat
// requests becomes Anthropic `/v1/messages` (system turns moved to `system`, `max_tokens` set), and
// a share (of either kind) asks for a stream. Which requests change is a hash of the line, so the
// same trace and shares give the same variant. The actors, keys, IPs and times are untouched, so
// generate.mjs's labels and `evaluate` apply as they are.
//   node examples/scenarios/wire-variants.mjs TRACE.jsonl [--messages 0.5] [--stream 0.5] > VARIANT.jsonl

/** A stable fraction in [0, 1) for line `i` and a salt (FNV-1a of both). */
function share(i, salt) {
  let h = 0x811c9dc5 ^ salt;
  for (const b of [i & 255, (i >>> 8) & 255, (i >>> 16) & 255, (i >>> 24) & 255]) {
    h ^= b;
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  h ^= h >>> 12;
  return (h >>> 0) / 2 ** 32;
}

/** The trace `text` with `messages` of its chat requests sent as /v1/messages and `stream` of them streamed. */
export function wireVariant(text, { messages = 0, stream = 0 } = {}) {
  const out = [];
  let i = 0;
  for (const line of text.split('\n')) {
    i++;
    if (!line.includes('"/v1/chat/completions"')) {
      out.push(line);
      continue;
    }
    const o = JSON.parse(line);
    if (o.type !== 'request' || o.path !== '/v1/chat/completions' || !o.body || !Array.isArray(o.body.messages)) {
      out.push(line);
      continue;
    }
    let body = o.body;
    if (share(i, 1) < messages) {
      const system = body.messages.filter((m) => m.role === 'system' || m.role === 'developer');
      const turns = body.messages.filter((m) => m.role === 'user' || m.role === 'assistant');
      if (turns.length > 0 && turns[0].role === 'user') {
        o.path = '/v1/messages';
        const { messages: _m, max_tokens, n: _n, ...rest } = body;
        body = {
          ...rest,
          max_tokens: typeof max_tokens === 'number' ? max_tokens : 1024,
          ...(system.length ? { system: system.map((m) => m.content).join('\n') } : {}),
          messages: turns,
        };
      }
    }
    if (share(i, 2) < stream) body = { ...body, stream: true };
    o.body = body;
    out.push(JSON.stringify(o));
  }
  return out.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { readFileSync } = await import('node:fs');
  const args = process.argv.slice(2);
  const opt = (name) => {
    const k = args.indexOf(name);
    return k >= 0 ? Number(args.splice(k, 2)[1]) : 0;
  };
  const messages = opt('--messages');
  const stream = opt('--stream');
  if (args.length !== 1 || !(messages >= 0 && messages <= 1) || !(stream >= 0 && stream <= 1)) {
    process.stderr.write('usage: wire-variants.mjs TRACE.jsonl [--messages 0..1] [--stream 0..1]\n');
    process.exit(2);
  }
  process.stdout.write(wireVariant(readFileSync(args[0], 'utf8'), { messages, stream }));
}
