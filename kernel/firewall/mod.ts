/**
 * Traffic management (flannel pkg/trafficmngr): flannel's masquerade and forward-accept rules, in iptables
 * (default) or nftables (`EnableNFTables`) form, with a resync loop that restores rules removed
 * behind our back. A leaf: inputs are plain CIDR strings, commands go through a
 * {@link CommandRunner} so every payload is testable without root.
 *
 * Life cycle (flannel main.go's start-up order): `cleanupOther()`, then `setupMasq()` if `--ip-masq`, then
 * `setupForward()` if `--iptables-forward-rules`, then `run()` in the background until shutdown.
 * Nothing is removed on shutdown (zero-downtime restart).
 */
import type { Logger } from "../../util/log.ts";
import type { CommandRunner } from "./command.ts";
import { IptablesManager } from "./iptables.ts";
import { NftablesManager } from "./nftables.ts";

export { MissingToolError, netnsRunner, systemRunner } from "./command.ts";
export type { CommandResult, CommandRunner, RunOptions } from "./command.ts";

export type TrafficMode = "iptables" | "nftables";

/** Masquerade inputs: canonical or host-bit CIDRs; a family is set up only if its network is given. */
export interface MasqOptions {
  /** Cluster network (config `Network`), e.g. `"10.42.0.0/16"`. */
  readonly network?: string;
  /** Own lease subnet, e.g. `"10.42.1.0/24"`; required with `network`. */
  readonly subnet?: string;
  /** Cluster IPv6 network (config `IPv6Network`). */
  readonly ipv6Network?: string;
  /** Own IPv6 lease subnet; required with `ipv6Network`. */
  readonly ipv6Subnet?: string;
  /** `FLANNEL_NETWORK` of the previous subnet.env, when it differs its rules are removed. */
  readonly prevNetwork?: string;
  /** `FLANNEL_SUBNET` of the previous subnet.env. */
  readonly prevSubnet?: string;
  readonly prevIpv6Network?: string;
  readonly prevIpv6Subnet?: string;
  /** Use `--random-fully` / `fully-random` when the tools support it (false with `--ip-masq-fully-random-disable`). */
  readonly fullyRandom: boolean;
  readonly signal?: AbortSignal;
}

export interface ForwardOptions {
  readonly network?: string;
  readonly ipv6Network?: string;
  readonly signal?: AbortSignal;
}

export interface ResyncLoopOptions {
  readonly signal: AbortSignal;
  /** `--iptables-resync`, seconds between checks. */
  readonly resyncSeconds: number;
  /** Called after every check (a liveness heartbeat). */
  readonly onTick?: () => void;
}

export interface TrafficManager {
  readonly mode: TrafficMode;
  /** Removes what the other mode left behind (flannel pkg/trafficmngr/iptables/iptables.go (cleanup)); read-only when there is nothing. */
  cleanupOther(opts?: { signal?: AbortSignal }): Promise<void>;
  /** Installs the masquerade rules (flannel pkg/trafficmngr/iptables/iptables.go (masquerade rules) / flannel pkg/trafficmngr/nftables/nftables.go) atomically per family. */
  setupMasq(opts: MasqOptions): Promise<void>;
  /** Installs the forward-accept rules (flannel pkg/trafficmngr/iptables/iptables.go (forward rules) / flannel pkg/trafficmngr/nftables/nftables.go) atomically per family. */
  setupForward(opts: ForwardOptions): Promise<void>;
  /** Checks every installed rule set once and reinstalls those that drifted; returns how many. */
  resync(opts?: { signal?: AbortSignal }): Promise<number>;
  /** Calls `resync()` every `resyncSeconds` until `signal` aborts; errors are logged, never thrown. */
  run(opts: ResyncLoopOptions): Promise<void>;
}

export interface TrafficManagerOptions {
  readonly mode: TrafficMode;
  readonly log: Logger;
  /** How commands are run; default spawns them on this host. */
  readonly run?: CommandRunner;
  /** Called with `"iptables"` / `"nftables"` whenever the resync restored a rule set. */
  readonly onRestored?: (kind: TrafficMode) => void;
}

export function createTrafficManager(opts: TrafficManagerOptions): TrafficManager {
  return opts.mode === "nftables" ? new NftablesManager(opts) : new IptablesManager(opts);
}
