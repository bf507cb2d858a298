// node analyze.cjs log.jsonl [op]  -> per-op max concurrency, counts, span
const fs = require('fs')
const [file, only] = process.argv.slice(2)
const ev = fs.readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map(l => JSON.parse(l))
const cur = {}, max = {}, cnt = {}, first = {}, last = {}
let all = 0, allMax = 0
for (const e of ev) {
  if (e.ev !== 'start' && e.ev !== 'end') continue
  if (e.ev === 'start') { cur[e.op] = (cur[e.op] || 0) + 1; cnt[e.op] = (cnt[e.op] || 0) + 1; all++; first[e.op] ??= e.t }
  else { cur[e.op]--; all--; last[e.op] = e.t }
  max[e.op] = Math.max(max[e.op] || 0, cur[e.op]); allMax = Math.max(allMax, all)
}
for (const op of Object.keys(cnt)) if (!only || op === only) console.log(`${op}: count=${cnt[op]} maxConcurrent=${max[op]} span=${(last[op] - first[op]).toFixed(0)}ms`)
console.log(`all ops maxConcurrent=${allMax}`)
