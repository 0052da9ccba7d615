/**
 * The peer table: which public IP and port serves which remote subnet. The agent's main thread
 * owns it and publishes it into shared memory ({@link PeerTable}); each data-path worker reads
 * its own copy ({@link PeerIndex}) when the version changes, so a lookup is a `Map.get`.
 *
 * Shared layout (Int32Array): [0] version (odd while being written), [1] count, then per peer
 * four words: subnet address, prefix length, public IP, UDP port.
 */

/** One remote lease as the data path sees it. */
export interface Peer {
  /** Subnet network address (uint32). */
  readonly net: number;
  readonly prefix: number;
  /** Where its datagrams go and come from (uint32). */
  readonly publicIP: number;
  readonly port: number;
}

const HEADER_WORDS = 2;
const PEER_WORDS = 4;

function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** The writer side, on the main thread. */
export class PeerTable {
  readonly buffer: SharedArrayBuffer;
  readonly capacity: number;
  readonly #words: Int32Array;

  constructor(capacity = 65536) {
    this.capacity = capacity;
    this.buffer = new SharedArrayBuffer((HEADER_WORDS + capacity * PEER_WORDS) * 4);
    this.#words = new Int32Array(this.buffer);
  }

  /** Replaces the published table (a seqlock write: readers retry while it is odd). */
  publish(peers: readonly Peer[]): void {
    if (peers.length > this.capacity) {
      throw new RangeError(
        `Cannot publish ${peers.length} peers: the udp peer table holds ${this.capacity}`,
      );
    }
    const w = this.#words;
    Atomics.add(w, 0, 1);
    Atomics.store(w, 1, peers.length);
    for (const [i, p] of peers.entries()) {
      const at = HEADER_WORDS + i * PEER_WORDS;
      Atomics.store(w, at, p.net | 0);
      Atomics.store(w, at + 1, p.prefix);
      Atomics.store(w, at + 2, p.publicIP | 0);
      Atomics.store(w, at + 3, p.port);
    }
    Atomics.add(w, 0, 1);
  }
}

/** The reader side, one per worker: lookups by destination and by source. */
export class PeerIndex {
  readonly #words: Int32Array;
  #version = -1;
  /** Distinct prefix lengths, longest first, with their masks and subnet → peer maps. */
  #byPrefix: { mask: number; peers: Map<number, Peer> }[] = [];
  #bySource = new Map<number, Peer[]>();

  constructor(buffer: SharedArrayBuffer) {
    this.#words = new Int32Array(buffer);
  }

  /** Re-reads the shared table if it changed; cheap when it did not. */
  refresh(): boolean {
    const w = this.#words;
    const v = Atomics.load(w, 0);
    if (v === this.#version) return false;
    for (;;) {
      const before = Atomics.load(w, 0);
      if (before & 1) continue;
      const peers: Peer[] = [];
      const count = Atomics.load(w, 1);
      for (let i = 0; i < count; i++) {
        const at = HEADER_WORDS + i * PEER_WORDS;
        peers.push({
          net: Atomics.load(w, at) >>> 0,
          prefix: Atomics.load(w, at + 1),
          publicIP: Atomics.load(w, at + 2) >>> 0,
          port: Atomics.load(w, at + 3),
        });
      }
      if (Atomics.load(w, 0) !== before) continue;
      this.#build(peers);
      this.#version = before;
      return true;
    }
  }

  /** Builds the index directly (unit tests). */
  static of(peers: readonly Peer[]): PeerIndex {
    const table = new PeerTable(Math.max(1, peers.length));
    table.publish(peers);
    const index = new PeerIndex(table.buffer);
    index.refresh();
    return index;
  }

  #build(peers: readonly Peer[]): void {
    const byPrefix = new Map<number, Map<number, Peer>>();
    const bySource = new Map<number, Peer[]>();
    for (const p of peers) {
      let m = byPrefix.get(p.prefix);
      if (!m) byPrefix.set(p.prefix, m = new Map());
      m.set(p.net, p);
      const list = bySource.get(p.publicIP);
      if (list) list.push(p);
      else bySource.set(p.publicIP, [p]);
    }
    this.#byPrefix = [...byPrefix.entries()]
      .sort((a, b) => b[0] - a[0])
      .map(([prefix, peers]) => ({ mask: maskOf(prefix), peers }));
    this.#bySource = bySource;
  }

  /** The peer whose subnet holds `dst` (longest prefix first), if any. */
  route(dst: number): Peer | undefined {
    const tables = this.#byPrefix;
    for (let i = 0; i < tables.length; i++) {
      const t = tables[i];
      const p = t.peers.get((dst & t.mask) >>> 0);
      if (p !== undefined) return p;
    }
    return undefined;
  }

  /** The peers announced from public IP `src` (undefined for a stranger). */
  fromSource(src: number): Peer[] | undefined {
    return this.#bySource.get(src);
  }
}

/** Why an inbound datagram is refused; 0 when accepted. */
export const SourceVerdict = {
  ok: 0,
  /** The sender is no current peer's public IP. */
  unknownSource: 1,
  /** The sender is a peer, but the inner source address is outside its subnets. */
  spoofedSource: 2,
} as const;

/** Only known peers get in: checks sender `src` and the inner packet's source `inner`. */
export function checkSource(index: PeerIndex, src: number, inner: number): number {
  const peers = index.fromSource(src);
  if (peers === undefined) return SourceVerdict.unknownSource;
  for (let i = 0; i < peers.length; i++) {
    const p = peers[i];
    if (((inner & maskOf(p.prefix)) >>> 0) === p.net) return SourceVerdict.ok;
  }
  return SourceVerdict.spoofedSource;
}
