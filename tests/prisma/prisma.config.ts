// Prisma's configuration for etl's tests (tests/fix_prisma.py): the WebAssembly schema engine
// through @prisma/adapter-pg, so nothing is downloaded. The database is $ETL_PRISMA_URL.
//
// With ETL_PRISMA_DRY=1, every statement that would change the database (CREATE, ALTER, DROP, ...)
// is printed on stdout as `-- etl-dry: <statement>` and not run: `prisma db push` then tells what
// Prisma would change, and changes nothing.
import { PrismaPg } from '@prisma/adapter-pg'
import pg from 'pg'
import { defineConfig } from 'prisma/config'

const CHANGES = /^\s*(CREATE|ALTER|DROP|TRUNCATE|INSERT|UPDATE|DELETE|COMMENT|GRANT|REVOKE)\b/i
// adapter-pg cannot read the catalog's `name` (19) and `"char"` (18) columns: they are text.
const AS_TEXT = new Set([18, 19])

function wrap(query: (...args: any[]) => any) {
  return function (this: unknown, ...args: any[]) {
    const text = typeof args[0] === 'string' ? args[0] : args[0]?.text
    if (process.env.ETL_PRISMA_DRY === '1' && typeof text === 'string' && CHANGES.test(text)) {
      process.stdout.write(`-- etl-dry: ${text.replace(/\s+/g, ' ').trim()}\n`)
      return Promise.resolve({ command: 'DRY', rowCount: 0, rows: [], fields: [] })
    }
    const result = query.apply(this, args)
    if (result && typeof result.then === 'function') {
      return result.then((res: any) => {
        for (const field of res?.fields ?? []) {
          if (AS_TEXT.has(field.dataTypeID)) field.dataTypeID = 25
        }
        return res
      })
    }
    return result
  }
}

pg.Client.prototype.query = wrap(pg.Client.prototype.query) as any
pg.Pool.prototype.query = wrap(pg.Pool.prototype.query) as any

export default defineConfig({
  experimental: { adapter: true },
  engine: 'js',
  // allowExitOnIdle: an idle pool would keep the CLI alive for its idle timeout.
  async adapter() {
    return new PrismaPg({ connectionString: process.env.ETL_PRISMA_URL, allowExitOnIdle: true })
  },
})
