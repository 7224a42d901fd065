// Apollo Client's persisted-queries link (APQ) against a live shopgraph, as an app uses it.
// Prints one JSON object: for each scenario, the result (data or error codes) and every HTTP
// request the link sent (method, whether it carried the query, the hash, the status).
// tests/test_persisted_queries.py starts the server and judges the output.
//
// usage: node apq.mjs http://127.0.0.1:PORT/graphql NONCE
import { createHash } from 'node:crypto';
import { ApolloClient, HttpLink, InMemoryCache, gql } from '@apollo/client';
import { createPersistedQueryLink } from '@apollo/client/link/persisted-queries';

const [url, nonce] = process.argv.slice(2);
if (!url || !nonce) {
  console.error('usage: node apq.mjs http://127.0.0.1:PORT/graphql NONCE');
  process.exit(2);
}

const JSON_PARAMS = new Set(['variables', 'extensions']);
const sha256 = (text) => createHash('sha256').update(text, 'utf8').digest('hex');

function recordingFetch(requests) {
  return async (input, init = {}) => {
    const target = new URL(typeof input === 'string' ? input : input.url);
    const method = (init.method || 'GET').toUpperCase();
    const sent = method === 'GET'
      ? Object.fromEntries(
          [...target.searchParams].map(([k, v]) => [k, JSON_PARAMS.has(k) ? JSON.parse(v) : v]),
        )
      : JSON.parse(init.body);
    const response = await fetch(input, init);
    requests.push({
      method,
      withQuery: typeof sent.query === 'string' && sent.query.length > 0,
      hash: sent.extensions?.persistedQuery?.sha256Hash ?? null,
      status: response.status,
    });
    return response;
  };
}

function client(options, requests) {
  const link = createPersistedQueryLink(options).concat(
    new HttpLink({ uri: url, fetch: recordingFetch(requests) }),
  );
  return new ApolloClient({ link, cache: new InMemoryCache() });
}

async function run(options, document, variables) {
  const requests = [];
  const apollo = client(options, requests);
  const outcome = { requests };
  try {
    const result = await apollo.query({ query: document, variables, fetchPolicy: 'network-only' });
    outcome.data = result.data;
  } catch (error) {
    outcome.error = `${error.name}: ${error.message}`;
    // CombinedGraphQLErrors carries the errors; a ServerError (non-2xx) carries the body.
    const errors = error.errors ?? (error.bodyText ? JSON.parse(error.bodyText).errors : []);
    outcome.codes = errors.map((e) => e.extensions?.code ?? null);
  }
  return outcome;
}

// The nonce makes the documents new to the server (its APQ store outlives one test).
const products = gql`
  query ApqProducts${nonce}($first: Int) {
    products(first: $first) {
      edges {
        node {
          slug
        }
      }
    }
  }
`;
const count = gql`
  query ApqCount${nonce} {
    products(first: 1) {
      totalCount
    }
  }
`;
const tampered = gql`
  query ApqTampered${nonce} {
    products(first: 1) {
      totalCount
    }
  }
`;

const post = { sha256 };
const get = { sha256, useGETForHashedQueries: true };
// A client whose hashes are not those of its documents (a tampered hash).
const lying = { generateHash: () => sha256(`not the document ${nonce}`) };

const out = {};
out.postFirst = await run(post, products, { first: 2 });
out.postAgain = await run(post, products, { first: 2 });
out.getFirst = await run(get, count, {});
out.getAgain = await run(get, count, {});
out.tampered = await run(lying, tampered, {});
out.tamperedAgain = await run(lying, tampered, {});
console.log(JSON.stringify(out));
