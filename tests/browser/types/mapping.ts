// Type-level tests of the generated TypeScript (everything.wire): what must compile does,
// and every `@ts-expect-error` line must be an error, or tsc fails ("unused directive").
// run.sh copies this next to the generated everything.ts and checks it with tsconfig.strict.json.

import * as wc from "./wirecall.js";
import { KitchenClient, Mode, Oops, type Bag, type KitchenCallbacks, type Shape } from "./everything.js";

// Unit-only enums are their JSON strings; the const object lists the values.
export const fast: Mode = "Fast";
export const values: Mode[] = Object.values(Mode);
// @ts-expect-error: not a variant
export const slow: Mode = "Slow";

// Enums with fields are unions tagged by `kind`, and narrow on it.
export function area(shape: Shape): number {
  switch (shape.kind) {
    case "Circle":
      return Math.PI * shape.radius ** 2;
    case "Rect":
      return shape.w * shape.h;
    case "Empty":
    case "Point":
      return 0;
  }
}
// @ts-expect-error: a Circle needs its radius
export const noRadius: Shape = { kind: "Circle" };
// @ts-expect-error: a Point has no radius
export const pointRadius: Shape = { kind: "Point", radius: 1 };
// @ts-expect-error: the tag is the IDL name
export const lowerCase: Shape = { kind: "circle", radius: 1 };

// Optional fields may be left out; required ones may not; names are the IDL's (JSON's).
export const bag: Bag = {
  items: { a: [{ kind: "Point" }, null] },
  per_mode: { exact_mode: 2 },
  raw: { nested: [1, "x", null] },
  data: wc.toBase64(new Uint8Array([1, 2, 3])),
  lastValue: 1,
  type: "t",
  counts: [],
  small: 0,
  medium: 0,
  large: 0,
  unsigned: 0,
  ratio: 0,
  flag: true,
};
// @ts-expect-error: `flag` is required
export const noFlag: Bag = { ...bag, flag: undefined };
// @ts-expect-error: the JSON name is `lastValue`, not `last_value`
export const renamed: Bag = { ...bag, last_value: 1 };
// A map keyed by an enum takes only its variants (any subset of them).
export const noModes: Bag = { ...bag, per_mode: {} };
// @ts-expect-error: `slow` is not a Mode
export const otherMode: Bag = { ...bag, per_mode: { slow: 1 } };

// Typed errors: a class whose `variant` narrows on `kind`; fields are the error's `data`.
export function describe(error: unknown): string {
  if (error instanceof Oops) {
    const v = error.variant;
    return v.kind === "Worse" ? `${v.data.why} ${v.data.code_hint ?? "-"}` : v.kind;
  }
  if (error instanceof wc.RpcError) return `${error.code} ${error.message}`;
  return String(error);
}
export const worse: wc.RpcError = new Oops({ kind: "Worse", data: { why: "x" } });
export const worseCode: -2 = Oops.codes.Worse;
// @ts-expect-error: Bad carries no data
export const badWithData = new Oops({ kind: "Bad", data: {} });
// @ts-expect-error: Worse needs `why`
export const worseWithout = new Oops({ kind: "Worse", data: {} });

// Client methods: typed params and results, optional trailing params, call options, streams.
export async function use(client: wc.Client, signal: wc.AbortSignalLike): Promise<void> {
  const kitchen = new KitchenClient(client);
  const cooked: Bag = await kitchen.cook("Fast");
  await kitchen.cook(Mode.exact_mode, { kind: "Rect", w: 1, h: 2 }, { timeoutMs: 5, signal });
  // @ts-expect-error: `mode` is required
  await kitchen.cook();
  // @ts-expect-error: a number is not a Mode
  await kitchen.cook(1);
  const nothing: void = await kitchen.nothing();
  const old: number = await kitchen.old(1);
  await kitchen.ping(1);
  const watch: wc.Subscription<Shape> = kitchen.watch(1);
  await watch.ready;
  for await (const shape of watch) area(shape);
  void [cooked, nothing, old];
}

// The client block: an interface to implement, turned into handlers.
export const callbacks: KitchenCallbacks = {
  approve: async (b) => b.flag,
  progress: () => {},
};
export const handlers: wc.Handlers = KitchenClient.callbacks(callbacks);
export const client: wc.Client = wc.connect("ws://127.0.0.1:1", { handlers, reconnect: false });
// @ts-expect-error: approve must answer a boolean
export const badCallbacks: KitchenCallbacks = { approve: () => "yes", progress: () => {} };
