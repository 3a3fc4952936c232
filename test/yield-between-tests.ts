/**
 * Lets each test worker's event loop turn between tests. The worker reports every finished
 * test to the runner over RPC and gives up on the reply after 60 s (birpc's fixed timeout,
 * reachable from no vitest option). Back-to-back synchronous tests never leave the
 * microtask queue, so the reply waits unread, and a file whose synchronous tests add up to
 * more than a minute (the trainer's, on a busy 2-core machine) ended a green run with
 * "Timeout calling onTaskUpdate" and exit code 1. Two setImmediate turns put a poll phase,
 * where the reply is read, between every pair of tests.
 */
import { afterEach } from "vitest";

afterEach(async () => {
  for (let turn = 0; turn < 2; turn++) await new Promise((resolve) => setImmediate(resolve));
});
