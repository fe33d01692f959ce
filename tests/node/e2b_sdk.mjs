// The official E2B SDKs (npm `e2b`, `@e2b/code-interpreter`, unmodified) against a running
// `corral serve`: tests/integration/test_e2b.py runs one scenario per call and asserts on the
// JSON object this prints as its last line.  Settings come from the SDK's own environment
// variables: E2B_API_KEY, E2B_API_URL, E2B_SANDBOX_URL.
//
//   node tests/node/e2b_sdk.mjs lifecycle
//
// A scenario records what the SDK returned or threw (class name, message, fields); it asserts
// nothing itself, so a failure shows up in Python with the whole record.
import { Sandbox } from '@e2b/code-interpreter'

const out = {}
const rec = (k, v) => { out[k] = v }

// What an awaited SDK call gave: {ok, value} or {ok: false, error, message, ...fields}.
async function attempt(f) {
  try {
    return { ok: true, value: await f() }
  } catch (e) {
    const r = { ok: false, error: e.constructor.name, message: String(e.message) }
    for (const k of ['exitCode', 'stdout', 'stderr', 'statusCode']) if (e[k] !== undefined) r[k] = e[k]
    return r
  }
}

const isPng = (b64) => Buffer.from(b64, 'base64').subarray(0, 8).equals(
  Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))

const scenarios = {
  async lifecycle() {
    const sbx = await Sandbox.create({ timeoutMs: 60_000, metadata: { suite: 'lifecycle', run: process.pid.toString() }, envs: { GREETING: 'hello from create' } })
    rec('id', sbx.sandboxId)
    const info = await sbx.getInfo()
    rec('info', { ...info, startedAt: info.startedAt.getTime(), endAt: info.endAt.getTime() })
    rec('listed', (await Sandbox.list({ query: { metadata: { run: process.pid.toString() } } }).nextItems()).map(s => s.sandboxId))
    rec('listed_other', (await Sandbox.list({ query: { metadata: { run: 'no such run' } } }).nextItems()).length)
    rec('paused_only', (await Sandbox.list({ query: { state: ['paused'] } }).nextItems()).length)
    await sbx.setTimeout(600_000)
    const later = await sbx.getInfo()
    rec('extended_ms', later.endAt.getTime() - info.endAt.getTime())
    const again = await Sandbox.connect(sbx.sandboxId)
    rec('env_from_create', (await again.commands.run('echo "$GREETING"')).stdout)
    rec('running', await sbx.isRunning())
    rec('metrics', await attempt(async () => (await sbx.getMetrics()).length))
    rec('kill', await sbx.kill())
    rec('kill_again', await Sandbox.kill(sbx.sandboxId))
    rec('running_after', await sbx.isRunning())
    rec('connect_after', await attempt(() => Sandbox.connect(sbx.sandboxId)))
    rec('info_after', await attempt(() => Sandbox.getInfo(sbx.sandboxId)))
  },

  async commands() {
    const sbx = await Sandbox.create({ timeoutMs: 60_000 })
    try {
      rec('simple', await sbx.commands.run('echo out; echo err >&2; pwd; id -un 2>/dev/null || id -u'))
      rec('failing', await attempt(() => sbx.commands.run('echo partial; echo bad >&2; exit 7')))
      rec('envs_cwd', (await sbx.commands.run('echo "$A-$B"; pwd', { envs: { A: 'x', B: 'y z' }, cwd: '/tmp' })).stdout)
      const chunks = []
      await sbx.commands.run('for i in 1 2 3; do echo line$i; sleep 0.05; done', { onStdout: (d) => chunks.push(d) })
      rec('streamed', chunks)
      rec('python', (await sbx.commands.run('python3 -c "import pandas; print(pandas.__name__)"')).stdout)
      rec('timeout', await attempt(() => sbx.commands.run('sleep 30', { timeoutMs: 1000 })))
      rec('after_timeout', (await sbx.commands.run('echo alive')).stdout)
      const bg = await sbx.commands.run('sleep 30', { background: true })
      rec('bg_pid', bg.pid)
      rec('list_during', (await sbx.commands.list()).map(p => ({ pid: p.pid, cmd: p.cmd, args: p.args })))
      rec('busy', await attempt(() => sbx.runCode('1 + 1')))
      rec('kill_bg', await bg.kill())
      rec('bg_result', await attempt(() => bg.wait()))
      rec('list_after', (await sbx.commands.list()).length)
      rec('kill_unknown', await sbx.commands.kill(424242))
      rec('as_root', await attempt(() => sbx.commands.run('id', { user: 'root' })))
      rec('stdin', await attempt(() => sbx.commands.sendStdin(1, 'x')))
    } finally {
      await sbx.kill()
    }
  },

  async files() {
    const sbx = await Sandbox.create({ timeoutMs: 60_000 })
    try {
      rec('write_text', await sbx.files.write('notes/hello.txt', 'Hello, corral ✓'))
      rec('read_text', await sbx.files.read('notes/hello.txt'))
      rec('read_abs', await sbx.files.read('/home/user/notes/hello.txt'))
      const all = new Uint8Array(256 * 4096)
      for (let i = 0; i < all.length; i++) all[i] = i % 256
      await sbx.files.write('/tmp/bytes.bin', all)
      const back = await sbx.files.read('/tmp/bytes.bin', { format: 'bytes' })
      rec('bytes_len', back.length)
      rec('bytes_same', Buffer.from(back).equals(Buffer.from(all)))
      rec('empty', await attempt(async () => { await sbx.files.write('empty.txt', ''); return sbx.files.read('empty.txt') }))
      rec('seen_inside', (await sbx.commands.run('sha256sum /tmp/bytes.bin | cut -c1-64')).stdout.trim())
      rec('multi', await sbx.files.write([{ path: 'm/a.txt', data: 'A' }, { path: 'm/b.txt', data: 'B' }]))
      rec('list', (await sbx.files.list('/home/user')).map(e => ({ name: e.name, type: e.type, path: e.path, size: e.size })).sort((a, b) => a.name < b.name ? -1 : 1))
      rec('list_deep', (await sbx.files.list('/home/user', { depth: 2 })).map(e => e.path).sort())
      rec('exists', [await sbx.files.exists('notes/hello.txt'), await sbx.files.exists('nope.txt')])
      const fi = await sbx.files.getInfo('notes/hello.txt')
      rec('stat', { name: fi.name, type: fi.type, size: fi.size, path: fi.path })
      rec('mkdir', [await sbx.files.makeDir('made/deep'), await sbx.files.makeDir('made/deep')])
      rec('rename', await attempt(async () => (await sbx.files.rename('m/a.txt', 'made/a2.txt')).path))
      rec('renamed_read', await sbx.files.read('made/a2.txt'))
      await sbx.files.remove('notes')
      rec('removed', await sbx.files.exists('notes/hello.txt'))
      rec('missing', await attempt(() => sbx.files.read('no/such/file.txt')))
      rec('traversal', await attempt(() => sbx.files.read('../../../etc/passwd')))
      rec('outside', await attempt(() => sbx.files.read('/etc/hostname')))
      rec('write_outside', await attempt(() => sbx.files.write('/usr/evil.txt', 'x')))
      await sbx.commands.run('ln -s /etc/passwd /home/user/planted')
      rec('planted', await attempt(() => sbx.files.read('planted')))
      rec('as_root', await attempt(() => sbx.files.read('made/a2.txt', { user: 'root' })))
      rec('watch', await attempt(() => sbx.files.watchDir('/home/user', () => {})))
      rec('metadata', await attempt(() => sbx.files.write('meta.txt', 'x', { metadata: { a: 'b' } })))
    } finally {
      await sbx.kill()
    }
  },

  async interpreter() {
    const sbx = await Sandbox.create({ timeoutMs: 60_000 })
    try {
      const seen = []
      const ex = await sbx.runCode('import sys\nx = 41\nprint("hello")\nprint("warn", file=sys.stderr)\nx + 1',
        { onStdout: (m) => seen.push(m.line) })
      rec('basic', { logs: ex.logs, text: ex.text, error: ex.error, count: ex.executionCount, results: ex.results.length })
      rec('callbacks', seen)
      rec('state', (await sbx.runCode('x * 2')).text)
      const df = await sbx.runCode('import pandas as pd\ndf = pd.DataFrame({"region": ["north", "south"], "sales": [10, 20]})\ndf')
      const r0 = df.results[0]
      rec('dataframe', { formats: r0.formats(), main: r0.isMainResult, html_has_table: (r0.html || '').includes('<table'), data: r0.data, text: r0.text })
      const fig = await sbx.runCode('import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.title("t")\nplt.show()\nplt.figure()\nplt.bar(["a"], [1])\nNone')
      rec('figures', fig.results.map(r => ({ formats: r.formats(), png: r.png ? isPng(r.png) : false, main: r.isMainResult })))
      const err = await sbx.runCode('def f():\n    return 1 / 0\nf()')
      rec('error', err.error && { name: err.error.name, value: err.error.value, traceback: err.error.traceback })
      rec('syntax', (await sbx.runCode('def (')).error?.name)
      const ctx = await sbx.createCodeContext()
      rec('ctx', ctx)
      await sbx.runCode('y = "in ctx"', { context: ctx })
      rec('ctx_value', (await sbx.runCode('y', { context: ctx })).text)
      rec('ctx_isolated', (await sbx.runCode('y')).error?.name)
      rec('ctx_list', (await sbx.listCodeContexts()).map(c => c.id))
      await sbx.restartCodeContext(ctx)
      rec('ctx_restarted', (await sbx.runCode('y', { context: ctx })).error?.name)
      await sbx.removeCodeContext(ctx)
      rec('ctx_removed', await attempt(() => sbx.runCode('1', { context: ctx })))
      rec('ctx_list_after', (await sbx.listCodeContexts()).map(c => c.id))
      rec('language', await attempt(() => sbx.runCode('1', { language: 'javascript' })))
      rec('ctx_cwd', await attempt(() => sbx.createCodeContext({ cwd: '/tmp' })))
      rec('env_vars', await attempt(() => sbx.runCode('1', { envs: { A: 'b' } })))
      const slow = await attempt(() => sbx.runCode('import time\ntime.sleep(30)', { timeoutMs: 1500 }))
      rec('client_timeout', slow)
      rec('after_timeout', await attempt(async () => (await sbx.runCode('21 * 2')).text))
      rec('files_from_code', await attempt(async () => { await sbx.runCode('open("/home/user/out.csv", "w").write("a,b\\n1,2\\n")'); return sbx.files.read('out.csv') }))
    } finally {
      await sbx.kill()
    }
  },

  async unsupported() {
    rec('internet', await attempt(() => Sandbox.create({ allowInternetAccess: true })))
    rec('template', await attempt(() => Sandbox.create('no-such-template')))
    const sbx = await Sandbox.create({ timeoutMs: 60_000 })
    try {
      rec('pause', await attempt(() => sbx.pause()))
      rec('snapshot', await attempt(() => sbx.createSnapshot()))
      rec('pty', await attempt(() => sbx.pty.create({ cols: 80, rows: 24 })))
      rec('still_running', await sbx.isRunning())
    } finally {
      await sbx.kill()
    }
  },

  async auth() {
    const bad = 'e2b_' + '0'.repeat(32)
    rec('create', await attempt(() => Sandbox.create({ apiKey: bad })))
    rec('list', await attempt(() => Sandbox.list({ apiKey: bad }).nextItems()))
  },
}

const name = process.argv[2]
if (!scenarios[name]) {
  console.error(`usage: e2b_sdk.mjs ${Object.keys(scenarios).join('|')}`)
  process.exit(2)
}
try {
  await scenarios[name]()
} catch (e) {
  out.__threw = { error: e.constructor.name, message: String(e.message), stack: String(e.stack) }
}
console.log(JSON.stringify(out))
// runCode leaves its 60 s request timer running when the server answers with an error (the
// SDK clears it only on success), which would keep node alive for a minute.
process.exit(0)
