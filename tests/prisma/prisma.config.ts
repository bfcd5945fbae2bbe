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

// adapter-pg drops `prisma migrate dev`'s shadow database while its own pool still holds a
// connection to it, which PostgreSQL refuses: the pool is ended first.
const SHADOW = /^DROP DATABASE "(prisma_migrate_shadow_db_[0-9a-f-]+)"$/
const shadowPools = new Map<string, any>()

function wrap(query: (...args: any[]) => any) {
  return function (this: any, ...args: any[]) {
    const database = this?.options?.database
    if (this instanceof pg.Pool && typeof database === 'string' && database.startsWith('prisma_migrate_shadow_db_')) {
      shadowPools.set(database, this)
    }
    const drop = typeof args[0] === 'string' ? SHADOW.exec(args[0].trim()) : null
    const pool = drop ? shadowPools.get(drop[1]) : undefined
    if (pool) {
      shadowPools.delete(drop![1])
      // The adapter ends the pool again afterwards: that second end must find nothing to do.
      return pool.end().then(() => {
        pool.end = () => Promise.resolve()
        return query.apply(this, args)
      })
    }
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

// The URL's parts rather than the URL: `prisma migrate dev` makes its shadow database by copying
// this configuration with another `database`, which a connectionString would override.
function connection(text: string) {
  const url = new URL(text)
  return {
    host: url.searchParams.get('host') || url.hostname || undefined,
    port: url.port ? Number(url.port) : undefined,
    user: decodeURIComponent(url.username) || undefined,
    password: decodeURIComponent(url.password) || undefined,
    database: decodeURIComponent(url.pathname.slice(1)) || undefined,
  }
}

export default defineConfig({
  experimental: { adapter: true },
  engine: 'js',
  // allowExitOnIdle: an idle pool would keep the CLI alive for its idle timeout.
  async adapter() {
    return new PrismaPg({ ...connection(process.env.ETL_PRISMA_URL ?? ''), allowExitOnIdle: true })
  },
})
