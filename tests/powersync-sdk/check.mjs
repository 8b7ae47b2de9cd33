// The official @powersync/node SDK against a ferry gateway serving the todo example
// (sql/examples/todo): first sync, a live change made in Postgres, and a local write uploaded
// through the gateway's write endpoint, acknowledged by a write checkpoint and then replaced by
// the server's state. Started by run.sh, which provides the environment below.
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { PowerSyncDatabase, Schema, Table, column, SyncStreamConnectionMethod } from '@powersync/node';

const { FERRY_ENDPOINT, FERRY_SECRET, FERRY_AUDIENCE, PG_PORT, WORK_DIR } = process.env;
const USER = 'demo-user';

// An HS256 token the gateway's development key accepts.
const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
function token(sub) {
  const now = Math.floor(Date.now() / 1000);
  const head = b64({ alg: 'HS256', typ: 'JWT' });
  const body = b64({ sub, aud: FERRY_AUDIENCE, iat: now, exp: now + 600 });
  const sig = crypto.createHmac('sha256', FERRY_SECRET).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}
const psql = (sql) =>
  execFileSync('psql', ['-qAtX', '-h', '127.0.0.1', '-p', PG_PORT, '-U', 'postgres', '-d', 'todo', '-c', sql])
    .toString()
    .trim();

const schema = new Schema({
  announcements: new Table({ message: column.text }),
  lists: new Table({ owner_id: column.text, name: column.text }),
  todos: new Table({ list_id: column.text, owner_id: column.text, description: column.text, completed: column.integer }),
});
const db = new PowerSyncDatabase({ schema, database: { dbFilename: 'sdk.sqlite', dbLocation: WORK_DIR } });
const jwt = token(USER);
let uploads = 0;
const connector = {
  async fetchCredentials() {
    return { endpoint: FERRY_ENDPOINT, token: jwt };
  },
  async uploadData(database) {
    const tx = await database.getNextCrudTransaction();
    if (!tx) return;
    const body = {
      client_id: await database.getClientId(),
      transaction_id: tx.transactionId,
      entries: tx.crud.map((e) => ({ op: e.op, id: e.id, type: e.table, data: e.opData })),
    };
    const res = await fetch(`${FERRY_ENDPOINT}/api/crud`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Token ${jwt}` },
      body: JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`upload refused: ${res.status} ${await res.text()}`);
    uploads++;
    await tx.complete();
  },
};
async function until(what, check, ms = 30000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for: ${what}`);
}
const count = async (sql) => (await db.get(`SELECT count(*) AS n FROM (${sql})`)).n;

const t0 = Date.now();
await db.connect(connector, { connectionMethod: SyncStreamConnectionMethod.HTTP });
await db.waitForFirstSync();
const todos = await count('SELECT id FROM todos');
const expected = Number(psql(`SELECT count(*) FROM todos WHERE owner_id = '${USER}'`));
if (todos !== expected) throw new Error(`first sync: ${todos} todos, Postgres has ${expected} for ${USER}`);
if ((await count(`SELECT id FROM todos WHERE owner_id <> '${USER}'`)) !== 0) throw new Error('synced rows of another user');
console.log(`first sync: ${todos} todos and ${await count('SELECT id FROM announcements')} announcement(s) in ${Date.now() - t0} ms`);

psql("UPDATE todos SET description = 'Oat milk' WHERE description = 'Milk'");
await until('the live change', async () => (await count("SELECT id FROM todos WHERE description = 'Oat milk'")) === 1);
console.log('a change made in Postgres arrived');

const id = `sdk-${Date.now()}`;
await db.execute(
  `INSERT INTO todos (id, list_id, owner_id, description, completed) VALUES (?, 'groceries', ?, 'Written by the SDK', 0)`,
  [id, USER],
);
await until('the upload', async () => uploads > 0);
await until('the row in Postgres', async () => psql(`SELECT count(*) FROM todos WHERE id = '${id}'`) === '1');
psql(`UPDATE todos SET description = 'Server wins' WHERE id = '${id}'`);
await until('the server state', async () => (await count(`SELECT id FROM todos WHERE id = '${id}' AND description = 'Server wins'`)) === 1);
await until('an empty upload queue', async () => (await count('SELECT id FROM ps_crud')) === 0);
console.log('a local write was uploaded, acknowledged, and replaced by the server state');
await db.disconnectAndClear();
await db.close();
console.log('OK');
process.exit(0);
