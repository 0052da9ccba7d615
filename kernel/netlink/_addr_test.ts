import assert from "node:assert/strict";
import { Buffer, decodeMessages, ifaddrmsg, rt, RTM_NEWADDR, streamBytes } from "./_codec.ts";
import { decodeAddress, encodeAddress } from "./_addr.ts";
import { kernelMessage } from "../../test/fakes/scripted_socket.ts";
import { IFA_F } from "./types.ts";

/** An RTM_NEWADDR for fd00::5/64 on link 3 with `headerFlags` and, if given, IFA_FLAGS. */
function newAddr(headerFlags: number, attrFlags?: number) {
  const header = ifaddrmsg(10, 64, 0, 3);
  header.writeUInt8(headerFlags, 2);
  const attrs: rt.AddressAttrs = { address: Buffer.from([0xfd, ...Array(14).fill(0), 5]) };
  if (attrFlags !== undefined) attrs.flags = rt.parseAddressFlags(attrFlags);
  const payload = Buffer.concat([header, streamBytes(rt.formatAddressAttrs(attrs))]);
  return decodeMessages(kernelMessage(RTM_NEWADDR, 0, 1, payload))[0];
}

Deno.test("decodeAddress() takes the IFA_FLAGS word over the 8-bit ifa_flags", async (t) => {
  await t.step("IFA_FLAGS present: all 32 bits (mngtmpaddr is above bit 7)", () => {
    const flags = IFA_F.MANAGETEMPADDR | IFA_F.PERMANENT | IFA_F.TENTATIVE;
    const got = decodeAddress(newAddr(flags & 0xff, flags));
    assert.deepEqual(got, { index: 3, address: "fd00::5/64", scope: 0, flags });
  });
  await t.step("IFA_FLAGS wins when the two disagree", () => {
    assert.equal(decodeAddress(newAddr(IFA_F.TENTATIVE, IFA_F.PERMANENT))?.flags, IFA_F.PERMANENT);
  });
  await t.step("no IFA_FLAGS (old kernels): the header byte", () => {
    assert.equal(decodeAddress(newAddr(IFA_F.DEPRECATED))?.flags, IFA_F.DEPRECATED);
  });
});

Deno.test("encodeAddress() sends only settable flags, and only when adding", () => {
  const a = {
    index: 3,
    address: "fd00::5/64",
    flags: IFA_F.NODAD | IFA_F.PERMANENT | IFA_F.TENTATIVE,
  };
  const [, add] = encodeAddress(a, true);
  assert.equal(rt.formatAddressFlags(rt.parseAddressAttrs(streamBytes(add)).flags!), IFA_F.NODAD);
  const [, del] = encodeAddress(a);
  assert.equal(rt.parseAddressAttrs(streamBytes(del)).flags, undefined);
});
