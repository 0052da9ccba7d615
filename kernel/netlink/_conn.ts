/**
 * The request engine: one request at a time per socket (a promise queue), sequence numbers
 * matched (stale replies from an abandoned request are skipped), multipart dumps read until
 * NLMSG_DONE, NLMSG_ERROR mapped to typed errors with the kernel's extended-ack text, and a dump
 * the kernel marks NLM_F_DUMP_INTR (the table changed mid-dump) retried.
 */
import {
  decodeMessages,
  encodeMessage,
  type NetlinkMessage,
  NLM_F_ACK,
  NLM_F_ACK_TLVS,
  NLM_F_CAPPED,
  NLM_F_DUMP,
  NLM_F_DUMP_INTR,
  NLM_F_REQUEST,
  NLMSG_DONE,
  NLMSG_ERROR,
  NLMSG_NOOP,
  NLMSG_OVERRUN,
  type StreamData,
} from "./_codec.ts";
import { errnoError, NetlinkError } from "./errors.ts";
import type { PacketSocket } from "./_socket.ts";

/** How often a dump interrupted by concurrent changes is retried before giving up. */
export const DUMP_ATTEMPTS = 5;
const NLMSGERR_ATTR_MSG = 1;
const EINTR = 4;

/** Thrown when the socket closed while a request waited for its answer. */
function closedError(action: string): Error {
  return new Error(`${action}: the netlink socket was closed`);
}

/** Reads the extended-ack message (NLMSGERR_ATTR_MSG) of an NLMSG_ERROR, if any. */
function extackMessage(msg: NetlinkMessage): string | undefined {
  if ((msg.flags & NLM_F_ACK_TLVS) === 0 || msg.data.length < 20) return undefined;
  const echoed = (msg.flags & NLM_F_CAPPED) !== 0 ? 16 : msg.data.readUInt32LE(4);
  let off = 4 + ((echoed + 3) & ~3);
  const d = msg.data;
  while (off + 4 <= d.length) {
    const len = d.readUInt16LE(off);
    const type = d.readUInt16LE(off + 2) & 0x3fff;
    if (len < 4 || off + len > d.length) break;
    if (type === NLMSGERR_ATTR_MSG) {
      return d.subarray(off + 4, off + len).toString("utf8").replace(/\0+$/, "");
    }
    off += (len + 3) & ~3;
  }
  return undefined;
}

export class Connection {
  #socket: PacketSocket;
  #seq: number;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(socket: PacketSocket, firstSeq = (Date.now() & 0x3fffffff) || 1) {
    this.#socket = socket;
    this.#seq = firstSeq;
  }

  /**
   * Sends one request (NLM_F_REQUEST|NLM_F_ACK|`flags`) and resolves with the reply messages
   * (none for a plain ACK). `action` names the operation in errors.
   */
  request(
    type: number,
    flags: number,
    body: [Uint8Array, StreamData],
    action: string,
  ): Promise<NetlinkMessage[]> {
    return this.#serialise(() =>
      this.#exchange(type, NLM_F_REQUEST | NLM_F_ACK | flags, body, action)
    );
  }

  /** Runs a dump (NLM_F_DUMP) to NLMSG_DONE, retrying when the kernel reports it interrupted. */
  dump(type: number, body: [Uint8Array, StreamData], action: string): Promise<NetlinkMessage[]> {
    return this.#serialise(async () => {
      for (let attempt = 1;; attempt++) {
        const { messages, interrupted } = await this.#exchangeDump(type, body, action);
        if (!interrupted) return messages;
        if (attempt >= DUMP_ATTEMPTS) {
          throw new NetlinkError(
            `${action}: dump interrupted by concurrent changes ${attempt} times`,
            EINTR,
          );
        }
      }
    });
  }

  close(): void {
    this.#socket.close();
  }

  #serialise<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => {});
    return run;
  }

  #nextSeq(): number {
    this.#seq = this.#seq >= 0x7fffffff ? 1 : this.#seq + 1;
    return this.#seq;
  }

  async #exchange(
    type: number,
    flags: number,
    body: [Uint8Array, StreamData],
    action: string,
  ): Promise<NetlinkMessage[]> {
    const seq = this.#nextSeq();
    this.#socket.send(encodeMessage(type, flags, seq, body[0], body[1]));
    const replies: NetlinkMessage[] = [];
    for (;;) {
      for (const msg of await this.#receiveFor(seq, action)) {
        if (msg.type === NLMSG_ERROR) {
          const err = -msg.data.readInt32LE(0);
          if (err === 0) return replies;
          throw errnoError(action, err, { detail: extackMessage(msg) });
        }
        if (msg.type === NLMSG_DONE) return replies;
        replies.push(msg);
      }
    }
  }

  async #exchangeDump(
    type: number,
    body: [Uint8Array, StreamData],
    action: string,
  ): Promise<{ messages: NetlinkMessage[]; interrupted: boolean }> {
    const seq = this.#nextSeq();
    this.#socket.send(encodeMessage(type, NLM_F_REQUEST | NLM_F_DUMP, seq, body[0], body[1]));
    const messages: NetlinkMessage[] = [];
    let interrupted = false;
    for (;;) {
      for (const msg of await this.#receiveFor(seq, action)) {
        if ((msg.flags & NLM_F_DUMP_INTR) !== 0) interrupted = true;
        if (msg.type === NLMSG_ERROR) {
          const err = -msg.data.readInt32LE(0);
          if (err === 0) return { messages, interrupted };
          throw errnoError(action, err, { detail: extackMessage(msg) });
        }
        if (msg.type === NLMSG_DONE) {
          const err = msg.data.length >= 4 ? -msg.data.readInt32LE(0) : 0;
          if (err > 0) throw errnoError(action, err, { detail: extackMessage(msg) });
          return { messages, interrupted };
        }
        messages.push(msg);
      }
    }
  }

  /** The next datagram's messages that answer `seq` (others are stale and dropped). */
  async #receiveFor(seq: number, action: string): Promise<NetlinkMessage[]> {
    for (;;) {
      const datagram = await this.#socket.receive();
      if (!datagram) throw closedError(action);
      let msgs: NetlinkMessage[];
      try {
        msgs = decodeMessages(datagram);
      } catch (cause) {
        throw new Error(`${action}: cannot parse the kernel's reply`, { cause });
      }
      const mine = msgs.filter((m) => m.seq === seq && m.type !== NLMSG_NOOP);
      if (mine.some((m) => m.type === NLMSG_OVERRUN)) {
        throw new NetlinkError(`${action}: the kernel reported an overrun`, 105);
      }
      if (mine.length > 0) return mine;
    }
  }
}
