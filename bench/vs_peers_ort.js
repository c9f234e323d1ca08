// ONNX Runtime (npm onnxruntime-node, CPU) side of bench/vs_peers.sh: runs the CLIP vision
// tower that vs_peers.py exported (MODEL.onnx) on the same 32 images (MODEL.onnx.pixels) with
// 2 intra-op threads, and prints the batch-32 rate and single-image latency, wall and CPU.
//   NODE_PATH=DIR/node_modules node bench/vs_peers_ort.js MODEL.onnx ROUNDS
'use strict';
const fs = require('fs');
const ort = require('onnxruntime-node');

function cpuSeconds() {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
}

async function main() {
    const [file, roundsArg] = process.argv.slice(2);
    const rounds = Number(roundsArg || 3);
    const session = await ort.InferenceSession.create(file, {
        intraOpNumThreads: 2, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
    const buf = fs.readFileSync(file + '.pixels');
    const all = new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4);
    const per = 3 * 224 * 224, batch = all.length / per;
    const feed = (n) => ({ pixels: new ort.Tensor('float32', all.subarray(0, n * per), [n, 3, 224, 224]) });
    await session.run(feed(1));
    await session.run(feed(batch));
    let best = [1e30, 0];
    for (let r = 0; r < rounds; r++) {
        const t0 = performance.now(), c0 = cpuSeconds();
        await session.run(feed(batch));
        const s = (performance.now() - t0) / 1e3, c = cpuSeconds() - c0;
        if (s < best[0]) best = [s, c];
    }
    const singles = [];
    const c0 = cpuSeconds();
    for (let r = 0; r < 5 * rounds; r++) {
        const t0 = performance.now();
        await session.run(feed(1));
        singles.push(performance.now() - t0);
    }
    const singleCpu = (cpuSeconds() - c0) / singles.length * 1e3;
    singles.sort((a, b) => a - b);
    const single = singles[Math.floor(singles.length / 2)];
    const [s, c] = best;
    console.log(`RESULT onnxruntime-fp32 ${(batch / s).toFixed(2)} ${(batch / c).toFixed(2)} ${s.toFixed(3)} ${c.toFixed(3)} ${single.toFixed(1)} ${singleCpu.toFixed(1)}`);
    console.log(`  onnxruntime-fp32 (onnxruntime-node ${require('onnxruntime-node/package.json').version}): batch ${batch}: ${(batch / s).toFixed(2)} images/s (${s.toFixed(3)} s wall, ${c.toFixed(3)} CPU s = ${(batch / c).toFixed(2)} images per CPU s); single image ${single.toFixed(1)} ms median (${singleCpu.toFixed(1)} CPU ms)`);
}
main().catch((e) => { console.log(`ONNX Runtime: failed: ${e.message}`); });
