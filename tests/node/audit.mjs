// Runs graphql-http's server audit (GraphQL-over-HTTP spec) against a live server and prints
// one JSON line per audit: {id, name, status, reason?}. Exit 0 when it ran, whatever the results
// (the pytest test that starts the server judges them); exit 2 on a usage error.
import { auditServer } from 'graphql-http';

const url = process.argv[2];
if (!url) {
  console.error('usage: node audit.mjs http://127.0.0.1:PORT/graphql');
  process.exit(2);
}

const results = await auditServer({ url });
for (const result of results) {
  const line = { id: result.id, name: result.name, status: result.status };
  if (result.status !== 'ok') {
    line.reason = result.reason;
    line.responseStatus = result.response.status;
    line.responseType = result.response.headers.get('content-type');
    // The body explains most failures; the audit may have read it already.
    line.body = await result.response.text().catch(() => '(body already read)');
  }
  console.log(JSON.stringify(line));
}
