/**
 * The few Kubernetes API shapes the subnet manager reads, written by hand: the fields we use of
 * `core/v1` Node and Pod, list and watch envelopes, and `meta/v1` Status. (Importing the types
 * of `npm:@kubernetes/client-node` costs a download and a slow type check of its whole tree for
 * five interfaces; these follow its `V1Node` etc. field for field where they overlap.)
 */

export interface ObjectMeta {
  name?: string;
  namespace?: string;
  resourceVersion?: string;
  uid?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface NodeCondition {
  type: string;
  status: string;
  lastHeartbeatTime?: string;
  lastTransitionTime?: string;
  reason?: string;
  message?: string;
}

export interface Node {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
  spec?: { podCIDR?: string; podCIDRs?: string[]; unschedulable?: boolean };
  status?: { conditions?: NodeCondition[]; addresses?: { type: string; address: string }[] };
}

export interface NodeList {
  apiVersion?: string;
  kind?: string;
  metadata?: { resourceVersion?: string; continue?: string };
  items: Node[];
}

export interface Pod {
  metadata?: ObjectMeta;
  spec?: { nodeName?: string };
}

/** `meta/v1` Status: the body of an API error and the object of a watch `ERROR` event. */
export interface Status {
  kind?: "Status";
  apiVersion?: string;
  status?: string;
  message?: string;
  reason?: string;
  code?: number;
  details?: unknown;
  metadata?: { resourceVersion?: string };
}

export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";

/** One line of a watch stream. */
export interface WatchEvent<T> {
  type: WatchEventType;
  object: T | Status;
}
