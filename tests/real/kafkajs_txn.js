#!/usr/bin/env node
// kafkajs transactions against `logsim serve`, driven by tests/real/clients.py.
//
// Usage: kafkajs_txn.js BOOTSTRAP OUTPUT_TOPIC INPUT_TOPIC GROUP CLIENT TXNS PER LIMIT [CHUNK]
//
// 1. A transactional producer (transactional id CLIENT) runs TXNS transactions of PER values each
//    to OUTPUT_TOPIC, aborting every third (after its values were written).
// 2. Consume-transform-produce: a read_committed consumer in group GROUP reads LIMIT records of
//    INPUT_TOPIC; a second transactional producer (id CLIENT_pipeline) writes one value per input
//    to OUTPUT_TOPIC, at most CHUNK per transaction, and commits the consumed offsets in each
//    transaction with sendOffsets.
//
// Prints one JSON object on stdout: {"committed": [...], "aborted": [...], "pipeline_written":
// [...], "positions": {partition: next offset committed for GROUP}}. Values are CLIENT-000000 and
// CLIENT_pipeline-000000 on, as value(client, i) in clients.py. kafkajs logs (errors only) go to
// stderr. Exits non-zero with the reason on any error, and within DEADLINE_MS whatever happens.

'use strict'

const path = require('path')

process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1'

const DEADLINE_MS = 110000
const KEYS = 16

function loadKafkajs() {
  try {
    return require(path.join(__dirname, 'node', 'node_modules', 'kafkajs'))
  } catch (e) {
    try {
      return require('kafkajs') // NODE_PATH
    } catch (_) {
      fail(`kafkajs is not installed (run tests/real/setup): ${e.message}`)
    }
  }
}

function fail(message) {
  process.stderr.write(`kafkajs_txn: FAIL: ${message}\n`)
  process.exit(1)
}

function value(client, i) {
  return `${client}-${String(i).padStart(6, '0')}`
}

// Everything kafkajs logs goes to stderr, so that stdout holds the JSON alone.
function stderrLogger() {
  return ({ namespace, label, log }) => {
    const { message, ...extra } = log
    process.stderr.write(`kafkajs ${label} [${namespace}] ${message} ${JSON.stringify(extra)}\n`)
  }
}

function client(kafkajs, bootstrap, clientId) {
  return new kafkajs.Kafka({
    clientId,
    brokers: bootstrap.split(','),
    logLevel: kafkajs.logLevel.ERROR,
    logCreator: stderrLogger,
    connectionTimeout: 5000,
    requestTimeout: 30000,
    retry: { retries: 5, initialRetryTime: 300, maxRetryTime: 5000 },
  })
}

function transactionalProducer(kafka, transactionalId) {
  return kafka.producer({
    idempotent: true,
    transactionalId,
    maxInFlightRequests: 1,
    transactionTimeout: 60000,
  })
}

async function produceTransactions(kafka, topic, clientName, txns, per) {
  const producer = transactionalProducer(kafka, clientName)
  await producer.connect()
  const committed = []
  const aborted = []
  try {
    for (let t = 0; t < txns; t++) {
      const values = []
      for (let i = 0; i < per; i++) values.push(value(clientName, t * per + i))
      const txn = await producer.transaction()
      try {
        await txn.send({
          topic,
          messages: values.map((v, i) => ({ key: `k${(t * per + i) % KEYS}`, value: v })),
        })
        if (t % 3 === 2) {
          await txn.abort()
          aborted.push(...values)
        } else {
          await txn.commit()
          committed.push(...values)
        }
      } catch (e) {
        if (txn.isActive()) await txn.abort().catch(() => {})
        throw new Error(`transaction ${t} of ${clientName}: ${e.stack || e}`)
      }
    }
  } finally {
    await producer.disconnect()
  }
  return { committed, aborted }
}

async function pipeline(kafka, input, output, group, clientName, limit, chunk) {
  const producer = transactionalProducer(kafka, clientName)
  const consumer = kafka.consumer({ groupId: group, readUncommitted: false })
  await producer.connect()
  await consumer.connect()
  await consumer.subscribe({ topics: [input], fromBeginning: true })
  const written = []
  const positions = {}
  let done = false
  let finish
  const finished = new Promise((resolve) => (finish = resolve))
  const end = (error) => {
    done = true
    finish(error)
  }

  async function transform(topic, partition, messages) {
    const values = messages.map((_, i) => value(clientName, written.length + i))
    const next = (BigInt(messages[messages.length - 1].offset) + 1n).toString()
    const txn = await producer.transaction()
    try {
      await txn.send({
        topic: output,
        messages: messages.map((m, i) => ({ key: m.key, value: values[i] })),
      })
      await txn.sendOffsets({
        consumerGroupId: group,
        topics: [{ topic, partitions: [{ partition, offset: next }] }],
      })
      await txn.commit()
    } catch (e) {
      if (txn.isActive()) await txn.abort().catch(() => {})
      throw e
    }
    written.push(...values)
    positions[partition] = Number(next)
  }

  await consumer.run({
    autoCommit: false,
    eachBatchAutoResolve: false,
    eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
      let at = 0
      while (!done && written.length < limit && at < batch.messages.length && isRunning() &&
        !isStale()) {
        const take = batch.messages.slice(at, at + Math.min(chunk, limit - written.length))
        try {
          await transform(batch.topic, batch.partition, take)
        } catch (e) {
          end(e)
          return
        }
        for (const m of take) resolveOffset(m.offset)
        at += take.length
        await heartbeat()
      }
      if (!done && written.length >= limit) end(null)
    },
  })
  const error = await finished
  await consumer.disconnect()
  await producer.disconnect()
  if (error) throw new Error(`pipeline of ${clientName}: ${error.stack || error}`)
  return { written, positions }
}

async function main() {
  const args = process.argv.slice(2)
  if (args.length < 8 || args.length > 9) {
    fail('usage: kafkajs_txn.js BOOTSTRAP OUTPUT_TOPIC INPUT_TOPIC GROUP CLIENT TXNS PER LIMIT ' +
      '[CHUNK]')
  }
  const [bootstrap, output, input, group, clientName] = args
  const [txns, per, limit, chunk] = [args[5], args[6], args[7], args[8] || '100'].map(Number)
  if (![txns, per, limit, chunk].every((n) => Number.isInteger(n) && n > 0)) {
    fail(`TXNS, PER, LIMIT and CHUNK must be positive integers, got ${args.slice(5).join(' ')}`)
  }
  setTimeout(() => fail(`not done within ${DEADLINE_MS / 1000} s`), DEADLINE_MS).unref()
  const kafkajs = loadKafkajs()
  const kafka = client(kafkajs, bootstrap, clientName)
  const { committed, aborted } = await produceTransactions(kafka, output, clientName, txns, per)
  const { written, positions } = await pipeline(
    kafka, input, output, group, `${clientName}_pipeline`, limit, chunk)
  const result = { committed, aborted, pipeline_written: written, positions }
  await new Promise((resolve) => process.stdout.write(JSON.stringify(result) + '\n', resolve))
}

main().then(
  () => process.exit(0), // kafkajs may leave timers behind
  (e) => fail(e.stack || String(e)),
)
