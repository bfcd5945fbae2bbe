// Prisma Client (query compiler + @prisma/adapter-pg) against etl's target, for tests/fix_prisma.py:
// reads every row of every model back, then in every model creates a row (with fresh parent rows
// for its required relations, ids and defaults left to the database), updates it and deletes it.
// Prints one JSON line: {"rows": {model: count}, "changed": [models]}.
// Usage: node client_check.cjs <client dir> <models.json>; models.json (written by the test from etl's
// reading of the schema, as the client's own datamodel leaves out what this needs):
// {"models": [{name, key: [field], fields: [{name, type, enum, relation, required, default, updatedAt}],
//   relations: [{model, from: [field], to: [field]}]}], "enums": {name: [value]}}
const fs = require('node:fs')
const { PrismaPg } = require('@prisma/adapter-pg')
const { PrismaClient, Prisma } = require(process.argv[2])

const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: process.env.ETL_PRISMA_URL }) })
const info = JSON.parse(fs.readFileSync(process.argv[3], 'utf8'))
const models = Object.fromEntries(info.models.map((m) => [m.name, m]))
const delegate = (model) => prisma[model.name[0].toLowerCase() + model.name.slice(1)]
let counter = 0

function value(field) {
  const n = ++counter
  if (field.enum) return info.enums[field.type][0]
  switch (field.type) {
    case 'String': return `${field.name}-new-${n}`
    case 'Int': return 100000 + n
    case 'BigInt': return BigInt(100000 + n)
    case 'Float': return n + 0.5
    case 'Decimal': return new Prisma.Decimal(`${n}.25`)
    case 'Boolean': return true
    case 'DateTime': return new Date(Date.UTC(2026, 0, 1, 0, 0, n))
    case 'Json': return { fresh: n }
    case 'Bytes': return new Uint8Array([n % 256, 0, 255])
  }
  throw new Error(`no value for ${field.type}`)
}

function whereUnique(model, row) {
  const key = model.key
  if (key.length === 1) return { [key[0]]: row[key[0]] }
  return { [key.join('_')]: Object.fromEntries(key.map((k) => [k, row[k]])) }
}

const foreignOf = (model) => new Set(model.relations.flatMap((r) => r.from))

async function fresh(model) {
  const foreign = foreignOf(model)
  const data = {}
  for (const field of model.fields) {
    if (foreign.has(field.name) || field.updatedAt) continue
    if (field.default || !field.required) continue // the database's or Prisma's default
    data[field.name] = value(field)
  }
  for (const relation of model.relations) {
    const required = relation.from.every((name) => model.fields.find((f) => f.name === name).required)
    if (!required) continue
    const parent = await fresh(models[relation.model])
    relation.from.forEach((name, i) => { data[name] = parent[relation.to[i]] })
  }
  return delegate(model).create({ data })
}

async function main() {
  const rows = {}
  for (const model of Object.values(models)) rows[model.name] = (await delegate(model).findMany()).length
  const changed = []
  for (const model of Object.values(models)) {
    const row = await fresh(model)
    const foreign = foreignOf(model)
    const field = model.fields.find((f) => !foreign.has(f.name) && !model.key.includes(f.name) && !f.unique && !f.updatedAt)
    if (field) await delegate(model).update({ where: whereUnique(model, row), data: { [field.name]: value(field) } })
    await delegate(model).delete({ where: whereUnique(model, row) })
    changed.push(model.name)
  }
  process.stdout.write(JSON.stringify({ rows, changed }) + '\n')
}

main().finally(() => prisma.$disconnect()).catch((e) => { console.error(e); process.exit(1) })
