// fal's own JavaScript client (@fal-ai/client 1.10.1), unmodified, driven against a
// fal-compatible server: N jobs at once through `fal.subscribe`. Its URLs are built for
// https://queue.fal.run; the request middleware (a documented option) sends them to the
// server under test instead. Prints one JSON line per job: its request id and when
// (Unix µs) the client held the result.
//
// usage: node fal_js.mjs BASE_URL ENDPOINT JOBS polling|streaming
import { fal } from "@fal-ai/client";

const [base, endpoint, jobs, mode] = process.argv.slice(2);
fal.config({
  credentials: "bench-key",
  requestMiddleware: async (req) => ({ ...req, url: req.url.replace(/^https:\/\/queue\.fal\.run/, base) }),
});
const nowUs = () => Math.round((performance.timeOrigin + performance.now()) * 1000);
const one = async () => {
  const r = await fal.subscribe(endpoint, { input: { prompt: "a lighthouse at dusk" }, mode, logs: false });
  return { request_id: r.requestId, held_unix_us: nowUs() };
};
const results = await Promise.allSettled(Array.from({ length: Number(jobs) }, one));
for (const r of results) {
  if (r.status === "fulfilled") console.log(JSON.stringify(r.value));
  else console.error(String(r.reason));
}
