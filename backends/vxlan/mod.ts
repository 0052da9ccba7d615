/** The `vxlan` backend: not implemented yet (being built); selecting it fails with a clear error. */
import type { Backend } from "../mod.ts";

export default function create(): Backend {
  throw new Error(
    'the vxlan backend is not implemented yet in this build; use "host-gw" or "alloc" for now',
  );
}
