/**
 * The udp backend's data path, seen from the main thread: two workers (TUN → UDP and
 * UDP → TUN) on the given descriptors, sharing the peer table, a stop flag and the counters.
 * A worker that dies unexpectedly is restarted, so the data path never stops.
 */
import { EventFd } from "../../kernel/tun.ts";
import { describeError, type Logger } from "../../util/log.ts";
import type { WorkerConfig } from "./_worker.ts";
import { workerUrl } from "./_worker_url.ts";
import { PeerTable } from "./peers.ts";
import { STAT_SLOTS } from "./stats.ts";

export interface DataPathOptions {
  readonly tunFd: number;
  readonly udpFd: number;
  /** The TUN device's address (uint32), source of ICMP replies. */
  readonly tunAddr: number;
  /** The TUN device's MTU: the largest packet carried. */
  readonly mtu: number;
  readonly peers: PeerTable;
  readonly log: Logger;
  /** Packets per recvmmsg/sendmmsg call; default 64. */
  readonly batch?: number;
}

export const DEFAULT_BATCH = 64;

type Direction = WorkerConfig["direction"];

export class DataPath {
  readonly stats = new Float64Array(new SharedArrayBuffer(STAT_SLOTS * 8));
  readonly #control = new Int32Array(new SharedArrayBuffer(4));
  readonly #wake = new EventFd();
  readonly #o: DataPathOptions;
  readonly #workers = new Map<Direction, Worker>();
  readonly #stopped = new Map<Direction, Promise<void>>();
  #stopping = false;

  private constructor(options: DataPathOptions) {
    this.#o = options;
  }

  /** Starts both workers; resolves once both run. */
  static async start(options: DataPathOptions): Promise<DataPath> {
    const dp = new DataPath(options);
    try {
      await Promise.all([dp.#spawn("out"), dp.#spawn("in")]);
    } catch (err) {
      await dp.stop();
      throw err;
    }
    return dp;
  }

  #spawn(direction: Direction): Promise<void> {
    const o = this.#o;
    const worker = new Worker(workerUrl(), { type: "module" });
    this.#workers.set(direction, worker);
    const config: WorkerConfig = {
      direction,
      tunFd: o.tunFd,
      udpFd: o.udpFd,
      wakeFd: this.#wake.fd,
      control: this.#control.buffer as SharedArrayBuffer,
      peers: o.peers.buffer,
      stats: this.stats.buffer as SharedArrayBuffer,
      tunAddr: o.tunAddr,
      mtu: o.mtu,
      batch: o.batch ?? DEFAULT_BATCH,
    };
    let onStopped!: () => void;
    this.#stopped.set(direction, new Promise<void>((r) => (onStopped = r)));
    return new Promise<void>((resolve, reject) => {
      worker.onmessage = (e: MessageEvent<{ started?: boolean; stopped?: boolean }>) => {
        if (e.data.started) resolve();
        if (e.data.stopped) onStopped();
      };
      worker.onerror = (e: ErrorEvent) => {
        e.preventDefault();
        onStopped();
        const err = new Error(`udp data path worker (${direction}) failed: ${e.message}`);
        reject(err);
        worker.terminate();
        if (this.#stopping) return;
        o.log.error(`${err.message}; restarting it`);
        setTimeout(() => {
          if (!this.#stopping) {
            this.#spawn(direction).catch((err) => o.log.error(describeError(err)));
          }
        }, 1000);
      };
      worker.postMessage(config);
    });
  }

  /** Stops both workers (they finish their current batch) and waits for them. */
  async stop(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    Atomics.store(this.#control, 0, 1);
    this.#wake.signal();
    const done = Promise.all(this.#stopped.values());
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([done, new Promise((r) => (timer = setTimeout(r, 2000)))]);
    clearTimeout(timer);
    for (const w of this.#workers.values()) w.terminate();
    this.#wake.close();
  }
}
