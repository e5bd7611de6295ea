// Every bound and default of the client, in one place, each with its unit in its name.

/** limits are the client's bounds and defaults. */
export const limits = {
  /** how long one attempt of an RPC may take before it counts as "outcome unknown". */
  attemptTimeoutMsDefault: 5_000,
  attemptTimeoutMsMax: 60_000,
  /** attempts of one call, the first included. */
  attemptsMaxDefault: 4,
  attemptsMaxMax: 20,
  /** full-jitter exponential backoff: the n-th wait is random in [0, min(max, initial * 2^(n-1))). */
  backoffMsInitialDefault: 50,
  backoffMsMaxDefault: 2_000,
  /** the whole call, every attempt and wait included. */
  deadlineMsDefault: 15_000,
  deadlineMsMax: 10 * 60_000,
  /** Reserve / Commit attempts per ReserveBatch / CommitBatch call; the server takes at most 1,000. */
  operationBatchSizeMaxDefault: 100,
  operationBatchSizeMaxMax: 1_000,
  /** Reserve (or Commit) calls out at once before further attempts wait to leave together in one batch. */
  operationBatchesInFlightMaxDefault: 4,
  operationBatchesInFlightMaxMax: 1_000,
  /** usage events per ReportUsage call; the server takes at most 1,000. */
  usageBatchSizeMaxDefault: 500,
  usageBatchSizeMaxMax: 1_000,
  /** how long an accepted event may wait for companions before its batch is sent. */
  usageLingerMsMaxDefault: 200,
  usageLingerMsMaxMax: 60_000,
  /** events accepted but not yet sent, in flight included; past this new events are dropped and counted. */
  usageQueueLengthMaxDefault: 100_000,
  usageQueueLengthMaxMax: 10_000_000,
  /** a background batch whose retries ran out waits this long before it is tried again. */
  usageRetryPauseMsDefault: 1_000,
  /** how long close() waits for the queue to drain when the caller gives no timeout. */
  closeTimeoutMsDefault: 10_000,
  /** how often failure policies are fetched again (ListFeatures). */
  policyRefreshMsDefault: 60_000,
  /** the usage spool's bounds: past them fail-open denies (SPOOL_FULL) and reportUsage refuses. */
  spoolBytesMaxDefault: 256 * 1024 * 1024,
  spoolEventsMaxDefault: 1_000_000,
  /** how often the spool is drained into the ledger when nothing else triggers it. */
  spoolDrainIntervalMsDefault: 5_000,
  /** while calls are out, the gRPC channel pings the server after this long without a frame... */
  channelKeepaliveMs: 30_000,
  /** ...and drops the connection (the calls fail Unavailable) when the ping is not answered within this. */
  channelKeepaliveTimeoutMs: 10_000,
  /** the largest response message accepted over gRPC: a batch of 1,000 answers fits many times over. */
  responseBytesMax: 64 * 1024 * 1024,
  /** server-stream messages received and not yet read before the stream is paused. */
  streamBufferMessagesMax: 64,
} as const;
