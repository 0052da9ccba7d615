/**
 * The `alloc` backend: acquires a lease and nothing else (no data path). MTU = interface MTU.
 * Useful to run the agent end to end, or when something else programs the network.
 */
import type { Backend, BackendDeps, Network } from "./mod.ts";
import type { NetworkConfig, SignalOptions } from "../subnet/mod.ts";

export default function createAllocBackend(deps: BackendDeps): Backend {
  return {
    async registerNetwork(_config: NetworkConfig, options?: SignalOptions): Promise<Network> {
      const { extIface } = deps;
      const lease = await deps.subnetManager.acquireLease(
        { publicIP: extIface.extAddr ?? 0, publicIPv6: extIface.extV6Addr },
        options,
      );
      return {
        lease,
        mtu: extIface.mtu,
        run: (opts) =>
          new Promise<void>((resolve) => {
            if (!opts?.signal || opts.signal.aborted) return resolve();
            opts.signal.addEventListener("abort", () => resolve(), { once: true });
          }),
      };
    },
  };
}
