// Loaded with `node --require ./polyfill.cjs` before PostGraphile 5, which targets Node 22:
// Node 20 lacks Promise.withResolvers (grafast and grafserv call it) and the ES2025 Set
// methods (Set.prototype.union: no code of the pinned 5.1.5 calls it; defined in case
// another 5.x pin does). Each is defined only where missing, as the spec has it.
"use strict";

if (typeof Promise.withResolvers !== "function") {
  Object.defineProperty(Promise, "withResolvers", {
    configurable: true,
    writable: true,
    value: function withResolvers() {
      let resolve;
      let reject;
      const promise = new this((res, rej) => {
        resolve = res;
        reject = rej;
      });
      return { promise, resolve, reject };
    },
  });
}

if (typeof Set.prototype.union !== "function") {
  Object.defineProperty(Set.prototype, "union", {
    configurable: true,
    writable: true,
    value: function union(other) {
      const result = new Set(this);
      for (const value of other.keys()) result.add(value);
      return result;
    },
  });
}
