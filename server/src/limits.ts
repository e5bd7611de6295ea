// Every bound the server enforces, in one place, each with its unit in its name.

/** limits are the server's bounds. */
export const limits = {
  /** int64 range of every amount on the wire and in the database. */
  amountMax: 9_223_372_036_854_775_807n,
  idLengthMax: 128,
  codeLengthMax: 64,
  noteLengthMax: 1_000,
  displayNameLengthMax: 200,
  priorityMax: 1_000,
  /**
   * the burn priority of a paid top-up's lot: purchased credits burn after promotional,
   * plan and support credits granted at the default 0, whatever their expiries.
   */
  purchasedLotPriority: 100,
  scaleMax: 12,
  reservationTtlMsMin: 1_000,
  reservationTtlMsMax: 24 * 60 * 60 * 1_000,
  reservationTtlMsDefault: 5 * 60 * 1_000,
  pageSizeDefault: 100,
  pageSizeMax: 1_000,
  /** bundles (or bundle versions) ListBundles answers at most: the catalog is small by nature. */
  bundlesListedMax: 1_000,
  /** the longest a bundle's credits may last from payment: 100 years. */
  creditExpirySecondsMax: 100n * 366n * 86_400n,
  /** a Stripe event signed longer ago than this is refused (Stripe's own default tolerance). */
  stripeToleranceSecondsMax: 300,
  /** a promo code's length bounds, as customers type it (the database checks the same). */
  promoCodeLengthMin: 3,
  promoCodeLengthMax: 64,
  /** the longest payment or refund reference, as sent by a payment system. */
  paymentReferenceLengthMax: 128,
  /** lots loaded for one decision; a balance with more free lots is refused, not misread. */
  lotsPerDecisionMax: 10_000,
  /** burn entries one charge may have for a refund (a burn draws from at most this many lots). */
  chargeBurnsMax: 10_000,
  /** ledger entries one dispute may name. */
  disputeEntriesMax: 100,
  /** how long staff have to first act on a dispute, and to resolve it, unless configured. */
  disputeFirstResponseMsDefault: 24 * 60 * 60 * 1_000,
  disputeResolutionMsDefault: 5 * 24 * 60 * 60 * 1_000,
  /** support keys without their own limit may grant at most this much per call. */
  supportGrantLimitDefault: 100_000n,
  /**
   * the reason codes a support key's Grant may use, by default (BURNDOWN_GRANT_REASON_CODES
   * replaces the list); service and admin keys may use any code.
   */
  grantReasonCodesDefault: ["goodwill", "service_credit", "promotion", "migration", "sales_deal", "correction"] as readonly string[],
  /** codes BURNDOWN_GRANT_REASON_CODES may list: a screen shows them as one menu. */
  grantReasonCodesMax: 100,
  poolSizeMax: 20,
  /**
   * admission (rpc/admission.ts): ledger and admin calls running at once per process, by
   * default. Generous, so that by default only a flood is refused: calls beyond the pool
   * wait for a connection as they always did. Latency-first deployments set less.
   */
  inFlightMaxDefault: 256,
  /** calls waiting for a slot; past this they are refused at once with OVERLOADED. */
  queuedMaxDefault: 1_024,
  /**
   * how long a call may wait for a slot before it is refused with OVERLOADED, by default:
   * the pool's own wait bound, so the default never refuses what a database wait would
   * have served; latency-first deployments set less (BURNDOWN_QUEUE_WAIT_MS). A caller's
   * deadline ends its wait sooner.
   */
  queueWaitMsDefault: 5_000,
  connectTimeoutMsMax: 5_000,
  /**
   * of a caller's timeout (grpc-timeout, connect-timeout-ms), the part kept back to carry
   * the answer: a tenth, at most this. The rest bounds the call's waits (deadline.ts).
   */
  deadlineReplyMsMax: 250,
  statementTimeoutMsMax: 10_000,
  /** PostgreSQL aborts a transaction of ours idle this long between statements (never, while the server lives). */
  idleInTransactionMsMax: 15_000,
  /** PostgreSQL checks this often whether a running statement's client is still connected. */
  clientCheckIntervalMs: 1_000,
  /** how long a verified API key is trusted before it is read again (bounds revocation delay). */
  apiKeyCacheMsMax: 5_000,
  apiKeyCacheEntriesMax: 10_000,
  /**
   * auto-recharge: the delays after a recharge order's failed payments before it is asked
   * for again (1 h, 6 h, 24 h); when the payment after the last delay fails too, the order
   * fails and auto-recharge is turned off (BURNDOWN_RECHARGE_RETRY_DELAYS_MS replaces them).
   */
  rechargeRetryDelaysMsDefault: [3_600_000, 21_600_000, 86_400_000] as readonly number[],
  /** the most recharges a month a customer's settings may allow. */
  monthlyRechargesMax: 1_000,
  /** expiry job: how often it runs and how much one pass handles. */
  jobIntervalMsDefault: 1_000,
  jobBatchSizeMax: 100,
  shutdownGraceMsMax: 10_000,
  requestBodyBytesMax: 1_048_576,
  /** ReserveBatch and CommitBatch: items per call. */
  operationBatchSizeMax: 1_000,
  /**
   * group commit (service/group-commit.ts): write lanes per process, by default. Customers
   * are spread over lanes by hash; each lane runs one transaction at a time, and calls that
   * arrive meanwhile join its next one.
   */
  writeLanesDefault: 2,
  /** customer-hash partitions a group may never span (one: any customers may share a group). */
  customerPartitionsDefault: 1,
  /** items in one group transaction (a usage event counts as one). */
  groupWeightMax: 1_000,
  /** attempts of a group that lost a race (a request id claimed meanwhile, a deadlock) before its items run alone. */
  groupAttemptsMax: 3,
  /** ReportUsage: events per call. */
  usageBatchSizeMax: 1_000,
  /** events older than this (by event time) are refused with EVENT_TOO_LATE, by default. */
  usageLateCutoffMsDefault: 7 * 24 * 3_600_000,
  /** events this far ahead of the server's clock are refused with EVENT_IN_FUTURE. */
  usageFutureToleranceMs: 5 * 60_000,
  /** how long an event id is remembered for deduplication, by default: longer than any retry horizon. */
  usageDedupRetentionMsDefault: 35 * 24 * 3_600_000,
  usagePropertiesMax: 32,
  usagePropertyKeyLengthMax: 64,
  usagePropertyValueLengthMax: 256,
  /** the longest offline duration a fail-open budget may allow. */
  offlineBudgetMsMax: 30 * 86_400_000,
  /** a pricing version's rates. */
  ratesPerVersionMax: 1_000,
  /** customers named in one MoveCustomersToPricingVersion. */
  customerIdsPerMoveMax: 1_000,
  /** the shadow pricing report: the longest period, and the customers and features one request may name. */
  reportPeriodMsMax: 366 * 86_400_000,
  reportCustomerIdsMax: 1_000,
  reportFeatureKeysMax: 1_000,
  /** customer ids listed in one feature's enforcement rollout. */
  rolloutCustomersMax: 1_000,
  /** the reason of an audited action. */
  reasonLengthMax: 1_000,
  pageTokenLengthMax: 512,
  /** GetUsageSummary: buckets one period may hold. */
  usageBucketsMax: 400,
  /** GetBalanceForecast: the days of burn its rate is measured over, by default and at most. */
  forecastLookbackDaysDefault: 14,
  forecastLookbackDaysMax: 90,
  /** GetBalanceForecast: an empty time further out than this is not forecast. */
  forecastHorizonDays: 366,
  /** SearchCustomers: matches per answer, by default and at most, and the longest query. */
  searchPageSizeDefault: 20,
  searchPageSizeMax: 100,
  searchQueryLengthMax: 200,
  /** health: how long a database probe may take before the replica counts as NOT_SERVING. */
  healthProbeTimeoutMs: 1_000,
  /** health: how long one probe's answer is shared by every Check and Watch (bounds the database load of unauthenticated probes). */
  healthProbeCacheMs: 1_000,
  /** health: how often an open Watch probes again. */
  healthWatchIntervalMs: 2_000,
  /** health: Watch streams open at once. */
  healthWatchersMax: 100,
  /** reflection: requests on one ServerReflectionInfo stream. */
  reflectionRequestsPerStreamMax: 1_000,
  /** webhooks: enabled endpoints at once, an endpoint URL's length, events one replay may name. */
  webhookEndpointsMax: 100,
  webhookUrlLengthMax: 2_000,
  webhookReplayEventsMax: 1_000,
  /** webhooks: how long one delivery attempt may take (connect, send, answer) before it counts as failed, by default. */
  webhookTimeoutMsDefault: 10_000,
  /** webhooks: attempts of one delivery before it is failed, by default (at most about a day and a half of backoff). */
  webhookAttemptsMaxDefault: 20,
  /** webhooks: the delay before the first retry, by default; it doubles per attempt, with jitter, up to webhookRetryDelayMsMax. */
  webhookRetryBaseMsDefault: 1_000,
  webhookRetryDelayMsMax: 6 * 3_600_000,
  /** webhooks: deliveries one worker has in flight at once (and claims per pass). */
  webhookInFlightMax: 32,
  /** credits.expiring: how long before its expiry a lot with free credits is announced, by default (7 days). */
  creditsExpiringNoticeMsDefault: 7 * 86_400_000,
  /** webhooks: the part of an answer body kept as last_error, in characters. */
  webhookErrorLengthMax: 500,
  /** plans (or plan versions) ListPlans answers at most. */
  plansListedMax: 1_000,
  /** allotments in one plan version. */
  allotmentsPerPlanMax: 20,
  /** periods a schedule may be given (100 years of months). */
  periodCountMax: 1_200,
  /** subscriptions, schedules or rollovers a customer's list answers at most. */
  customerPlanRowsListedMax: 100,
  /** scheduled periods one pass of the scheduler grants at most (each is one transaction). */
  schedulePeriodsPerPassMax: 1_000,
  /** pools: members one process remembers as pooled (write path, service/pool-cache.ts); a forgotten one costs one retry. */
  poolMembersCachedMax: 100_000,
  /** pools: members one pool may have (ListPoolMembers answers them all). */
  poolMembersMax: 1_000,
  /** finance reports: periods one roll-forward covers at most (a leap year of days; 30 years of months). */
  revenueReportPeriodsMax: 366,
  /** finance reports: credit types one roll-forward covers at most; with more, a report names one. */
  revenueReportCreditTypesMax: 100,
  /** VerifyLedger: differences one verification lists at most (it counts them all). */
  verifyDifferencesListedMax: 1_000,
  /** VerifyLedger: the longest its one statement may run (a whole large ledger), in its own transaction only. */
  verifyStatementMsMax: 15 * 60_000,
  /** VerifyLedger: memory for each of its hash aggregates, in MB (PostgreSQL work_mem, its transaction only). */
  verifyWorkMemMbMax: 64,
  /** GetBalance as of a time: lots of one customer rebuilt at most; a customer with more is refused, not misread. */
  asOfLotsMax: 10_000,
  /**
   * support grants: the limit that applies when no role or key limit does, the same as the
   * role limit migration 18 gives a fresh deployment, so that a support key is never unlimited.
   */
  supportGrantPerCallMaxDefault: 100_000n,
  supportGrantPeriodMaxDefault: 1_000_000n,
  supportGrantPeriodSecondsDefault: 86_400,
  /** a grant limit's rolling period: 1 hour to 365 days. */
  grantLimitPeriodSecondsMin: 3_600,
  grantLimitPeriodSecondsMax: 31_536_000,
  /** grant requests expire, undecided, after this long unless BURNDOWN_GRANT_REQUEST_TTL says otherwise. */
  grantRequestTtlMsDefault: 7 * 86_400_000,
  /** BURNDOWN_GRANT_REQUEST_TTL's bounds: 1 minute to 90 days. */
  grantRequestTtlMsMin: 60_000,
  grantRequestTtlMsMax: 90 * 86_400_000,
  /** a ticket link's longest form. */
  ticketUrlLengthMax: 2_000,
  /** a reason code's label. */
  reasonCodeLabelLengthMax: 200,
  /** reason codes a deployment keeps (ListReasonCodes answers them all). */
  reasonCodesMax: 100,
  /** /metrics: how long the figures read from the database are reused, so a scrape storm reads them once per this. */
  metricsQueryCacheMs: 10_000,
  /** /metrics: the longest its database statement may run (its own transaction only). */
  metricsStatementMsMax: 2_000,
  /** /metrics: pending webhook deliveries counted at most (the gauge stops there). */
  metricsWebhookPendingCountMax: 1_000_000,
  /** the customers recently written that a replica remembers for the self-check's sample. */
  selfCheckRecentCustomersMax: 1_024,
  /** the ledger self-check: every this long unless BURNDOWN_SELF_CHECK_INTERVAL_MS says otherwise (0 turns it off). */
  selfCheckIntervalMsDefault: 15 * 60_000,
  /** the self-check's customers per run unless BURNDOWN_SELF_CHECK_SAMPLE says otherwise, and its bounds. */
  selfCheckSampleDefault: 100,
  selfCheckSampleMax: 10_000,
  /** the self-check: the longest one customer's verification may run. */
  selfCheckStatementMsMax: 30_000,
  /** usage from a queue (queue/usage-consumer.ts): events per batch, by default (at most usageBatchSizeMax). */
  queueBatchSizeDefault: 256,
  /** how long JetStream waits for a consumed message's ack before it delivers the message again, by default. */
  queueAckWaitMsDefault: 30_000,
  queueAckWaitMsMin: 1_000,
  queueAckWaitMsMax: 3_600_000,
  /** batches one consumer records at once (each an admission slot), and so fetches ahead. */
  queueBatchesInFlightMax: 4,
  /** a batch the ledger could not record comes back after this long (nak with delay). */
  queueNakDelayMs: 1_000,
  /**
   * a queued message that fails alone this many deliveries, with an error that is no
   * database fault, while other messages are recorded (within queuePoisonWindowMs), is
   * dead-lettered as RECORDING_FAILED instead of coming back forever.
   */
  queuePoisonDeliveriesMin: 5,
  queuePoisonWindowMs: 60_000,
  /** the longest error text a poison message's dead letter carries (Burndown-Error). */
  queueDeadLetterErrorCharsMax: 500,
  /** a queued usage message's largest payload: one event is far smaller. */
  queueMessageBytesMax: 64 * 1_024,
  /** how often the consumer reads its API key again (revoked or expired: it stops taking messages). */
  queueKeyCheckMs: 5_000,
  /** the longest statement text a database span records; longer ones are cut. */
  traceStatementCharsMax: 4_000,
} as const;
