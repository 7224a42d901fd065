// PostGraphile 5 as the bench's peer (W5): the Amber preset over the bench database,
// read-only (no mutations), no GraphiQL, no explain, a pool of 10 like shopgraph's.
// bench/run.py sets BENCH_PG_DSN (possibly through the SQL-counting proxy) and passes
// --host 127.0.0.1 --port N on the command line.
import { PostGraphileAmberPreset } from "postgraphile/presets/amber";
import { makePgService } from "@dataplan/pg/adaptors/pg";

const connectionString = process.env.BENCH_PG_DSN;
if (!connectionString) {
  throw new Error("BENCH_PG_DSN is not set (bench/run.py sets it)");
}

/** @type {GraphileConfig.Preset} */
const preset = {
  extends: [PostGraphileAmberPreset],
  disablePlugins: ["PgMutationCreatePlugin", "PgMutationUpdateDeletePlugin"],
  pgServices: [
    makePgService({ connectionString, schemas: ["public"], poolConfig: { max: 10 } }),
  ],
  grafserv: { graphiql: false, watch: false },
  grafast: { explain: false },
};

export default preset;
