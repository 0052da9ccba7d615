/** The reconcile loop's netlink change stream, which it repairs from. */
import type { EventGroup, KernelEvent, Netlink } from "../kernel/netlink/types.ts";
import { describeError, type Logger } from "../util/log.ts";

/**
 * Hands every kernel change notification of `groups` to `onEvent` until `signal` aborts. A
 * failed subscription is logged once; the caller's periodic reconcile keeps working without it.
 */
export async function forEachKernelEvent(
  netlink: Pick<Netlink, "subscribe">,
  groups: readonly EventGroup[],
  log: Logger,
  signal: AbortSignal | undefined,
  onEvent: (event: KernelEvent) => void,
): Promise<void> {
  try {
    for await (const event of netlink.subscribe(groups, { signal })) onEvent(event);
  } catch (err) {
    if (!signal?.aborted) {
      log.error(
        `Kernel event subscription failed (falling back to the periodic check): ${
          describeError(err)
        }`,
      );
    }
  }
}
