/**
 * The rules that keep memory handed to the kernel alive (kernel/pinned.ts), checked over the whole
 * tree so a new FFI call site cannot break them unnoticed:
 *
 * - only kernel/pinned.ts takes the address of JavaScript memory or makes pointers from numbers;
 * - every module that opens a library through FFI is listed here, with its symbol table;
 * - a `nonblocking` symbol (it runs on another thread while JavaScript goes on) takes no
 *   `"buffer"` parameter, and the calls that read a vector of further addresses take it as a
 *   `"pointer"`: both can then only be given pinned memory.
 */
import assert from "node:assert/strict";
import { symbols as netlinkSymbols } from "../kernel/netlink/_libc.ts";
import { symbols as tunSymbols } from "../kernel/_tun_libc.ts";
import { Pinned, pinnedCount } from "../kernel/pinned.ts";
import { LIBC_SYMBOLS as sdNotifySymbols } from "../util/sd_notify.ts";
import { LIBC_SYMBOLS as mallocTrimSymbols } from "../util/malloc_trim.ts";
import { sourceFiles } from "./source_files.ts";
import { SYMBOLS as unixgramSymbols } from "./unixgram.ts";

type SymbolTable = Record<string, { parameters: readonly string[]; nonblocking?: boolean }>;

const TABLES: Record<string, SymbolTable> = {
  "kernel/netlink/_libc.ts": netlinkSymbols,
  "kernel/_tun_libc.ts": tunSymbols,
  "util/sd_notify.ts": sdNotifySymbols,
  "util/malloc_trim.ts": mallocTrimSymbols,
  "test/unixgram.ts": unixgramSymbols,
};

/** libc calls whose argument is a vector of structures holding further addresses. */
const ADDRESS_VECTORS = new Set(["recvmmsg", "sendmmsg", "recvmsg", "sendmsg", "readv", "writev"]);

Deno.test("only kernel/pinned.ts takes addresses of JavaScript memory", async () => {
  const offenders: string[] = [];
  for await (const [path, text] of sourceFiles(/\.ts$/)) {
    if (path === "kernel/pinned.ts" || path === "test/ffi_memory_test.ts") continue;
    if (/UnsafePointer\s*\.\s*(of|create)\b/.test(text)) offenders.push(path);
  }
  assert.deepEqual(offenders, []);
});

Deno.test("every FFI library is opened by a module whose symbol table is checked here", async () => {
  const opening: string[] = [];
  for await (const [path, text] of sourceFiles(/\.ts$/)) {
    if (path !== "test/ffi_memory_test.ts" && /\bdlopen\s*\(/.test(text)) opening.push(path);
  }
  assert.deepEqual(opening.sort(), Object.keys(TABLES).sort());
});

Deno.test("nonblocking and address-vector FFI parameters can only take pinned memory", async (t) => {
  for (const [file, table] of Object.entries(TABLES)) {
    await t.step(file, () => {
      for (const [name, def] of Object.entries(table)) {
        if (def.nonblocking) {
          assert.ok(
            !def.parameters.includes("buffer"),
            `${file}: nonblocking ${name} takes a buffer`,
          );
        }
        if (ADDRESS_VECTORS.has(name)) {
          assert.equal(def.parameters[1], "pointer", `${file}: ${name}'s vector must be a pointer`);
        }
      }
    });
  }
});

Deno.test("Pinned memory keeps its address and contents until released", () => {
  const before = pinnedCount();
  const p = new Pinned(4096);
  p.bytes.fill(0x5a);
  const address = p.address();
  assert.equal(p.address(100), address + 100n);
  assert.equal(pinnedCount(), before + 1);
  const view = new Deno.UnsafePointerView(p.pointer(10));
  assert.equal(view.getUint8(0), 0x5a);
  p.view(10, 1)[0] = 7;
  assert.equal(view.getUint8(0), 7);
  assert.throws(() => p.view(4090, 10), RangeError);
  assert.throws(() => p.address(4097), RangeError);
  p.release();
  assert.equal(pinnedCount(), before);
  assert.throws(() => p.pointer(), /after release/);
  assert.throws(() => new Pinned(0), RangeError);
});

Deno.test("Pinned memory survives garbage collection while only its pointer is kept", async () => {
  // A child isolate with --expose-gc: pin, drop every JavaScript reference but the pointer,
  // allocate and collect, then read the memory back through the pointer.
  const script = `
    import { Pinned } from ${JSON.stringify(new URL("../kernel/pinned.ts", import.meta.url).href)};
    function make() { const p = new Pinned(1 << 20); p.bytes.fill(0xa7); return p.pointer(4096); }
    const ptr = make();
    for (let i = 0; i < 50; i++) { new ArrayBuffer(1 << 20); globalThis.gc(); }
    const v = new Deno.UnsafePointerView(ptr);
    console.log(v.getUint8(0), v.getUint8(1000000));
  `;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--v8-flags=--expose-gc", script],
    env: { MALLOC_PERTURB_: "165" },
  }).output();
  assert.equal(new TextDecoder().decode(out.stderr), "");
  assert.equal(new TextDecoder().decode(out.stdout).trim(), "167 167");
});
