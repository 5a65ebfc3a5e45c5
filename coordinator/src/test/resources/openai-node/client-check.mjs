// Drives Owlery's HTTP API with OpenAI's official Node client (the package from the npm registry),
// for OpenAiNodeClientTest: prints one JSON object with what each call gave or how it failed.
import OpenAI from 'openai';
import { readFileSync } from 'node:fs';

const { BASE_URL, KEY, LIMITED_KEY, IMAGE_FILE } = process.env;
const image = 'data:image/png;base64,' + readFileSync(IMAGE_FILE).toString('base64');
const messages = [{
  role: 'user',
  content: [{ type: 'image_url', image_url: { url: image } }, { type: 'text', text: 'Describe the image.' }],
}];
const request = { model: 'tiny-owl2', messages, temperature: 0, max_tokens: 8 };
const client = new OpenAI({ baseURL: BASE_URL, apiKey: KEY, maxRetries: 0, timeout: 60_000 });

function failure(e) {
  return { status: e.status ?? null, name: e.constructor.name, type: e.type ?? null, message: e.message };
}

async function refusal(call) {
  try {
    await call();
    return { status: 200, name: 'no error' };
  } catch (e) {
    return failure(e);
  }
}

const out = {};
const whole = await client.chat.completions.create({ ...request, logprobs: true, top_logprobs: 2 });
out.whole = {
  object: whole.object,
  text: whole.choices[0].message.content,
  finish: whole.choices[0].finish_reason,
  logprobs: whole.choices[0].logprobs.content.map(t => ({ token: t.token, logprob: t.logprob, top: t.top_logprobs.length })),
  usage: whole.usage,
};

const stream = await client.chat.completions.create({ ...request, stream: true, stream_options: { include_usage: true } });
const streamed = { text: '', finish: null, usage: null, chunks: 0 };
for await (const chunk of stream) {
  streamed.chunks++;
  if (chunk.choices.length > 0) {
    streamed.text += chunk.choices[0].delta.content ?? '';
    streamed.finish = chunk.choices[0].finish_reason ?? streamed.finish;
  }
  if (chunk.usage) {
    streamed.usage = chunk.usage;
  }
}
out.streamed = streamed;

// A stop sequence from the answer itself: its last three characters.
const stop = whole.choices[0].message.content.trimEnd().slice(-3);
const stopped = await client.chat.completions.create({ ...request, stop: [stop] });
out.stopped = { stop, text: stopped.choices[0].message.content, finish: stopped.choices[0].finish_reason };

out.models = (await client.models.list()).data.map(model => model.id);

const wrongKey = new OpenAI({ baseURL: BASE_URL, apiKey: 'not-a-key-of-this-server', maxRetries: 0 });
out.badKey = await refusal(() => wrongKey.chat.completions.create(request));

const limited = new OpenAI({ baseURL: BASE_URL, apiKey: LIMITED_KEY, maxRetries: 0 });
out.spending = await refusal(() => limited.chat.completions.create(request));
out.overLimit = await refusal(() => limited.chat.completions.create(request));

console.log(JSON.stringify(out));
