import { expect, test, type Page } from '@playwright/test';

/**
 * Environment checks, independent of the app's UI: WebGPU works in a dedicated Worker of the
 * test Chromium, and the local hub is reachable cross-origin (CORS, ranges) from a Worker.
 * The probes run in Workers created from Blobs on the app's page (a secure context).
 * Note: the page must really come from the preview server. A document fulfilled by page.route()
 * has no loopback address space, so Chromium's Local Network Access check blocks its fetches
 * to the hub on 127.0.0.1 ("Permission was denied ... `loopback` address space").
 */

/** Runs in a Worker: adapter/device info plus a tiny compute dispatch (using subgroups if present). */
async function gpuProbe() {
  const adapter = await navigator.gpu?.requestAdapter();
  if (!adapter) return { error: 'requestAdapter() returned null' };
  const features = [...adapter.features].sort();
  const limits: Record<string, number> = {};
  for (const k of ['maxBufferSize', 'maxStorageBufferBindingSize', 'maxComputeWorkgroupStorageSize',
    'maxComputeInvocationsPerWorkgroup', 'maxStorageBuffersPerShaderStage'] as const) limits[k] = adapter.limits[k];
  const hasSubgroups = adapter.features.has('subgroups');
  const device = await adapter.requestDevice({ requiredFeatures: hasSubgroups ? ['subgroups'] : [] });
  const n = 256;
  const code = [
    hasSubgroups ? 'enable subgroups;' : '',
    '@group(0) @binding(0) var<storage, read_write> data: array<u32>;',
    '@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) id: vec3u' +
      (hasSubgroups ? ', @builtin(subgroup_size) sg: u32' : '') + ') {',
    '  data[id.x] = data[id.x] * 2u;',
    hasSubgroups ? `  if (id.x == 0u) { data[${n}] = sg; }` : '',
    '}',
  ].join('\n');
  device.pushErrorScope('validation');
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  const buf = device.createBuffer({ size: (n + 1) * 4, usage });
  device.queue.writeBuffer(buf, 0, Uint32Array.from({ length: n + 1 }, (_, i) => i));
  const read = device.createBuffer({ size: (n + 1) * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const module = device.createShaderModule({ code });
  const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [{ binding: 0, resource: { buffer: buf } }],
  }));
  pass.dispatchWorkgroups(n / 64);
  pass.end();
  enc.copyBufferToBuffer(buf, 0, read, 0, (n + 1) * 4);
  device.queue.submit([enc.finish()]);
  const validationError = await device.popErrorScope();
  if (validationError) return { error: `validation: ${validationError.message}` };
  await read.mapAsync(GPUMapMode.READ);
  const out = new Uint32Array(read.getMappedRange().slice(0));
  const { vendor, architecture, device: dev, description } = adapter.info;
  return {
    info: { vendor, architecture, device: dev, description },
    features,
    limits,
    computeOk: out.subarray(0, n).every((v, i) => v === 2 * i),
    subgroupSize: hasSubgroups ? out[n] : null,
  };
}

/** Runs in a Worker: fetches a JSON file and a byte range from the hub at `base`. */
async function hubProbe(base: string) {
  const cfg = await fetch(`${base}/local/stories260k/resolve/main/config.json`);
  const json = await cfg.json();
  const part = await fetch(`${base}/local/stories260k/resolve/main/model.safetensors`, { headers: { Range: 'bytes=0-7' } });
  return {
    cfgStatus: cfg.status,
    hidden: json.hidden_size,
    rangeStatus: part.status,
    contentRange: part.headers.get('content-range'),
    rangeBytes: (await part.arrayBuffer()).byteLength,
  };
}

/** Runs `fn(arg)` in a dedicated Worker (from a Blob) on the page; resolves with its result or `{ error }`. */
async function inWorker(page: Page, fn: (arg: any) => Promise<unknown>, arg?: unknown): Promise<any> {
  const source = `(${fn.toString()})(${JSON.stringify(arg ?? null)})
    .then((r) => postMessage(r), (e) => postMessage({ error: String((e && e.stack) || e) }));`;
  return page.evaluate(
    (source) =>
      new Promise((resolve, reject) => {
        const w = new Worker(URL.createObjectURL(new Blob([source], { type: 'text/javascript' })));
        w.onmessage = (e) => (resolve(e.data), w.terminate());
        w.onerror = (e) => reject(new Error(e.message));
      }),
    source,
  );
}

// These probes start Blob workers, which the app's Content-Security-Policy (worker-src 'self') forbids on its
// pages; they check the browser environment, not the app, so they run with CSP bypassed (e2e/token-safety.spec.ts
// checks that the app itself runs under its CSP without a violation).
test.use({ bypassCSP: true });

test.beforeEach(async ({ page }) => {
  await page.goto('/', { waitUntil: 'domcontentloaded' });
});

test('WebGPU works in a dedicated Worker', async ({ page }, testInfo) => {
  const result = await inWorker(page, gpuProbe);
  await testInfo.attach('webgpu-env.json', { body: JSON.stringify(result, null, 2), contentType: 'application/json' });
  console.log('WebGPU in Worker:', JSON.stringify(result));
  expect(result.error).toBeUndefined();
  expect(result.computeOk).toBe(true);
  if (result.info.architecture === 'swiftshader') {
    // The documented CPU test environment: kernels must not need f16; subgroups are available.
    expect(result.features).not.toContain('shader-f16');
    expect(result.features).toContain('subgroups');
    expect(result.subgroupSize).toBeGreaterThan(0);
  }
});

test('local hub is reachable from a Worker (CORS, ranges)', async ({ page }) => {
  const result = await inWorker(page, hubProbe, process.env.HUB_URL);
  expect(result).toEqual({ cfgStatus: 200, hidden: 64, rangeStatus: 206, contentRange: expect.stringMatching(/^bytes 0-7\/\d+$/), rangeBytes: 8 });
});
