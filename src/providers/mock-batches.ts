/**
 * The built-in mock's Files and Batches APIs (OpenAI `/v1/files`, `/v1/batches`; Anthropic
 * `/v1/messages/batches`), answered minimally in each vendor's shape so the SDKs' `files.create`,
 * `batches.create/retrieve` and `messages.batches.create/retrieve/results` work on the embedded
 * default. A batch ends at once: every request succeeds with a short mock answer. In memory, per
 * tenant (one tenant never sees another's ids), bounded: past `maxItems` the oldest item goes.
 */
import { randomBytes } from 'node:crypto';

const id = (prefix: string) => `${prefix}${randomBytes(12).toString('hex')}`;
const sec = (ms: number) => Math.floor(ms / 1000);

interface StoredFile {
  owner: string;
  object: Record<string, unknown>;
  content: Buffer;
}

/** A mock answer body for one batched request, in the shape of its endpoint. */
function openAIAnswer(url: string, body: Record<string, unknown>, now: number): Record<string, unknown> {
  const model = typeof body.model === 'string' ? body.model : 'mock';
  if (url.endsWith('/embeddings'))
    return {
      object: 'list',
      model,
      data: [{ object: 'embedding', index: 0, embedding: [0, 0, 0] }],
      usage: { prompt_tokens: 1, total_tokens: 1 },
    };
  return {
    id: id('chatcmpl-'),
    object: 'chat.completion',
    created: sec(now),
    model,
    choices: [
      { index: 0, message: { role: 'assistant', content: 'mock batch answer' }, finish_reason: 'stop' },
    ],
    usage: { prompt_tokens: 1, completion_tokens: 3, total_tokens: 4 },
  };
}

export class MockBatches {
  private readonly files = new Map<string, StoredFile>();
  private readonly batches = new Map<string, { owner: string; object: Record<string, unknown> }>();
  private readonly messageBatches = new Map<
    string,
    { owner: string; object: Record<string, unknown>; results: string }
  >();

  constructor(private readonly maxItems = 1000) {}

  private cap<T>(m: Map<string, T>): void {
    while (m.size > this.maxItems) m.delete(m.keys().next().value!);
  }

  createFile(
    owner: string,
    filename: string,
    purpose: string,
    content: Buffer,
    now: number,
  ): Record<string, unknown> {
    const object = {
      id: id('file-'),
      object: 'file',
      bytes: content.length,
      created_at: sec(now),
      filename,
      purpose,
      status: 'processed',
      expires_at: null,
      status_details: null,
    };
    this.files.set(object.id, { owner, object, content });
    this.cap(this.files);
    return object;
  }

  file(owner: string, fileId: string): StoredFile | undefined {
    const f = this.files.get(fileId);
    return f && f.owner === owner ? f : undefined;
  }

  listFiles(owner: string): Record<string, unknown> {
    const data = [...this.files.values()].filter((f) => f.owner === owner).map((f) => f.object);
    return {
      object: 'list',
      data,
      has_more: false,
      first_id: data[0]?.id ?? null,
      last_id: data.at(-1)?.id ?? null,
    };
  }

  deleteFile(owner: string, fileId: string): Record<string, unknown> | undefined {
    if (!this.file(owner, fileId)) return undefined;
    this.files.delete(fileId);
    return { id: fileId, object: 'file', deleted: true };
  }

  /** Runs the batch at once over the input file's lines; undefined when the file is not the caller's. */
  createBatch(
    owner: string,
    body: { input_file_id: string; endpoint: string; completion_window: string; metadata?: unknown },
    now: number,
  ): Record<string, unknown> | undefined {
    const input = this.file(owner, body.input_file_id);
    if (!input) return undefined;
    const lines = input.content
      .toString('utf8')
      .split('\n')
      .filter((l) => l.trim());
    const out = lines.map((l) => {
      const r = JSON.parse(l) as { custom_id?: string; url?: string; body?: Record<string, unknown> };
      return JSON.stringify({
        id: id('batch_req_'),
        custom_id: r.custom_id ?? null,
        response: {
          status_code: 200,
          request_id: id('req_'),
          body: openAIAnswer(r.url ?? body.endpoint, r.body ?? {}, now),
        },
        error: null,
      });
    });
    const output = this.createFile(
      owner,
      'batch_output.jsonl',
      'batch_output',
      Buffer.from(`${out.join('\n')}\n`),
      now,
    );
    const t = sec(now);
    const object = {
      id: id('batch_'),
      object: 'batch',
      endpoint: body.endpoint,
      errors: null,
      input_file_id: body.input_file_id,
      completion_window: body.completion_window,
      status: 'completed',
      output_file_id: output.id,
      error_file_id: null,
      created_at: t,
      in_progress_at: t,
      expires_at: t + 86_400,
      finalizing_at: t,
      completed_at: t,
      failed_at: null,
      expired_at: null,
      cancelling_at: null,
      cancelled_at: null,
      request_counts: { total: lines.length, completed: lines.length, failed: 0 },
      metadata: body.metadata ?? null,
    };
    this.batches.set(object.id, { owner, object });
    this.cap(this.batches);
    return object;
  }

  batch(owner: string, batchId: string): Record<string, unknown> | undefined {
    const b = this.batches.get(batchId);
    return b && b.owner === owner ? b.object : undefined;
  }

  listBatches(owner: string): Record<string, unknown> {
    const data = [...this.batches.values()].filter((b) => b.owner === owner).map((b) => b.object);
    return {
      object: 'list',
      data,
      has_more: false,
      first_id: data[0]?.id ?? null,
      last_id: data.at(-1)?.id ?? null,
    };
  }

  /** A completed batch cannot be cancelled: answered as it is, as OpenAI does for an ended batch. */
  cancelBatch(owner: string, batchId: string): Record<string, unknown> | undefined {
    return this.batch(owner, batchId);
  }

  /** Anthropic: ends at once; `resultsUrl(id)` is where the SDK fetches the JSONL results. */
  createMessageBatch(
    owner: string,
    requests: { custom_id: string; params: Record<string, unknown> }[],
    now: number,
    resultsUrl: (id: string) => string,
  ): Record<string, unknown> {
    const batchId = id('msgbatch_');
    const iso = new Date(now).toISOString();
    const results = requests
      .map((r) =>
        JSON.stringify({
          custom_id: r.custom_id,
          result: {
            type: 'succeeded',
            message: {
              id: id('msg_'),
              type: 'message',
              role: 'assistant',
              model: r.params.model ?? 'mock',
              content: [{ type: 'text', text: 'mock batch answer' }],
              stop_reason: 'end_turn',
              stop_sequence: null,
              usage: { input_tokens: 1, output_tokens: 3 },
            },
          },
        }),
      )
      .join('\n');
    const object = {
      id: batchId,
      type: 'message_batch',
      processing_status: 'ended',
      request_counts: { processing: 0, succeeded: requests.length, errored: 0, canceled: 0, expired: 0 },
      ended_at: iso,
      created_at: iso,
      expires_at: new Date(now + 86_400_000).toISOString(),
      archived_at: null,
      cancel_initiated_at: null,
      results_url: resultsUrl(batchId),
    };
    this.messageBatches.set(batchId, { owner, object, results: `${results}\n` });
    this.cap(this.messageBatches);
    return object;
  }

  messageBatch(
    owner: string,
    batchId: string,
  ): { object: Record<string, unknown>; results: string } | undefined {
    const b = this.messageBatches.get(batchId);
    return b && b.owner === owner ? b : undefined;
  }

  listMessageBatches(owner: string): Record<string, unknown> {
    const data = [...this.messageBatches.values()].filter((b) => b.owner === owner).map((b) => b.object);
    return { data, has_more: false, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null };
  }

  deleteMessageBatch(owner: string, batchId: string): Record<string, unknown> | undefined {
    if (!this.messageBatch(owner, batchId)) return undefined;
    this.messageBatches.delete(batchId);
    return { id: batchId, type: 'message_batch_deleted' };
  }
}
