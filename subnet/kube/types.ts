/**
 * The Kubernetes API shapes the subnet manager reads: the models of `npm:@kubernetes/client-node`
 * (`V1Node`, `V1NodeList`, `V1Pod`, `V1Status`), as types only, in their JSON form. Nothing of
 * that package is loaded at run time (the API client is our own, `client.ts`: the package's
 * watch stalls under Deno); `types_test.ts` checks that the module graph stays free of it.
 */
import type {
  V1Node,
  V1NodeCondition,
  V1NodeList,
  V1ObjectMeta,
  V1Pod,
  V1Status,
} from "@kubernetes/client-node";

/**
 * The JSON form of a client-node model, as the API server sends it. The package's own
 * (de)serialiser converts two things we do not: timestamps, typed `Date`, are RFC 3339 strings
 * on the wire, and fields named like JavaScript reserved words carry a `_` (`_continue` is
 * `continue`).
 */
export type Wire<T> = T extends Date ? string
  : T extends readonly (infer U)[] ? Wire<U>[]
  : T extends object ? { [K in keyof T as K extends `_${infer Name}` ? Name : K]: Wire<T[K]> }
  : T;

export type ObjectMeta = Wire<V1ObjectMeta>;
export type NodeCondition = Wire<V1NodeCondition>;
export type Node = Wire<V1Node>;
export type NodeList = Wire<V1NodeList>;
export type Pod = Wire<V1Pod>;
/** `meta/v1` Status: the body of an API error and the object of a watch `ERROR` event. */
export type Status = Wire<V1Status>;

export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";

/** One line of a watch stream. */
export interface WatchEvent<T> {
  type: WatchEventType;
  object: T | Status;
}
