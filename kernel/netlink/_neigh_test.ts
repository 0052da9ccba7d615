import assert from "node:assert/strict";
import { Buffer, decodeMessages, rt, RTM_NEWNEIGH, streamBytes } from "./_codec.ts";
import { decodeNeigh, encodeFdb, encodeNeigh } from "./_neigh.ts";
import { kernelMessage } from "../../test/fakes/scripted_socket.ts";

Deno.test("neighbour and FDB entries: the attribute tables made once match npm:netlink's, and decode back", () => {
  const mac = Buffer.from([0x0a, 0x58, 0x0a, 0xf4, 0x01, 0x02]);
  const [nh, na] = encodeNeigh({ index: 5, ip: "10.5.1.0", mac: "0a:58:0a:f4:01:02" }, "set");
  assert.deepEqual(
    streamBytes(na),
    streamBytes(rt.formatNeighborAttrs({ dst: Buffer.from([10, 5, 1, 0]), lladdr: mac })),
  );
  const neigh = decodeNeigh(
    decodeMessages(kernelMessage(RTM_NEWNEIGH, 0, 1, Buffer.concat([nh, streamBytes(na)])))[0],
  );
  assert.deepEqual(neigh, {
    kind: "neigh",
    neigh: { index: 5, ip: "10.5.1.0", mac: "0a:58:0a:f4:01:02", state: 0x80 },
  });

  const [fh, fa] = encodeFdb({ index: 5, mac: "0a:58:0a:f4:01:02", dst: "192.168.1.2" }, "set");
  assert.deepEqual(
    streamBytes(fa),
    streamBytes(rt.formatNeighborAttrs({ lladdr: mac, dst: Buffer.from([192, 168, 1, 2]) })),
  );
  const fdb = decodeNeigh(
    decodeMessages(kernelMessage(RTM_NEWNEIGH, 0, 1, Buffer.concat([fh, streamBytes(fa)])))[0],
  );
  assert.deepEqual(fdb, {
    kind: "fdb",
    fdb: { index: 5, mac: "0a:58:0a:f4:01:02", dst: "192.168.1.2", state: 0x80 },
  });
});
