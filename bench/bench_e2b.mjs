// bench/bench_e2b.mjs -- the E2B-compatible surface through the official SDK (npm
// @e2b/code-interpreter, installed in tests/node by `make deps`): the same operations as the
// native API's benchmark, as an E2B user's code sees them.
//
//   E2B_API_KEY=e2b_... E2B_API_URL=http://127.0.0.1:PORT E2B_SANDBOX_URL=... \
//       node bench/bench_e2b.mjs [ROUNDS]
//
// Per round, sequentially: Sandbox.create, runCode('print(1)'), commands.run('true'), a small
// files.write + files.read, kill.  Prints one BENCH line per operation (median, p90, ms) and
// one for the whole cycle.  A benchmark, not a test.
const sdk = await import(new URL('../tests/node/node_modules/@e2b/code-interpreter/dist/index.mjs',
  import.meta.url))
const { Sandbox } = sdk

const rounds = Number(process.argv[2] || 30)
const ops = { create: [], run_code: [], command: [], file_round_trip: [], kill: [], cycle: [] }

async function timed(name, f) {
  const t0 = performance.now()
  const v = await f()
  ops[name].push(performance.now() - t0)
  return v
}

function pct(xs, p) {
  const s = [...xs].sort((a, b) => a - b)
  const k = (s.length - 1) * p
  const lo = Math.floor(k), hi = Math.min(lo + 1, s.length - 1)
  return s[lo] + (s[hi] - s[lo]) * (k - lo)
}

for (let i = 0; i < rounds + 3; i++) {
  const t0 = performance.now()
  const sbx = await timed('create', () => Sandbox.create({ timeoutMs: 60_000 }))
  const ex = await timed('run_code', () => sbx.runCode('print(1)'))
  if (ex.logs.stdout.join('') !== '1\n') throw new Error('unexpected output ' + JSON.stringify(ex.logs))
  await timed('command', () => sbx.commands.run('true'))
  await timed('file_round_trip', async () => {
    await sbx.files.write('b.txt', 'bench')
    return sbx.files.read('b.txt')
  })
  await timed('kill', () => sbx.kill())
  ops.cycle.push(performance.now() - t0)
  if (i < 3) for (const k of Object.keys(ops)) ops[k].pop() // warm-up rounds are not counted
}
for (const [k, v] of Object.entries(ops))
  console.log(`BENCH ${k} n=${v.length} median_ms=${pct(v, 0.5).toFixed(2)} p90_ms=${pct(v, 0.9).toFixed(2)}`)
process.exit(0)
