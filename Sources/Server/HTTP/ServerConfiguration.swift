/// Everything `tally serve` can be told. Defaults are what `tally serve` with no arguments uses.
public struct ServerConfiguration: Sendable {
    public var host = "127.0.0.1"
    public var port = 8080
    /// Largest request body accepted (413 above). 10,000 events of ~750 bytes fit.
    public var maxBodyBytes = 8 << 20
    /// Most events in one request (413 above): seed 000's bounded queue is 10,000.
    public var maxEventsPerRequest = 10_000
    /// How long a client is told to wait (Retry-After, seconds) when ingest is over its bounds.
    public var retryAfterSeconds = 1
    /// How long a request that finds the buffer behind (`EventStore.isBehind`: over 1¼ of
    /// `flush_bytes`) waits for room (`EventStore.waitForRoom`) before it goes on, or gets the
    /// 503 if the buffer is still over its bound; 0 = no wait. A flush of the default 16 MiB
    /// takes ~0.1–0.3 s here.
    public var overloadWaitMilliseconds = 1000
    /// Requests a minute per client address (429 above; 0 = no limit). Seed 000's
    /// rateLimitPerMinute: a browser sends a batch every 5 s, so 1,000 leaves room for a NAT.
    public var requestsPerMinutePerIP = 1000
    /// Requests a minute per write key (429 above; 0 = no limit).
    public var requestsPerMinutePerKey = 0
    /// A header set by a trusted proxy with the client's country (e.g. `CF-IPCountry`), used
    /// for events that carry no country_code; nil = none.
    public var countryHeader: String?

    /// Bearer token that guards `/v1/admin/...`; nil disables the admin API.
    public var adminToken: String?
    /// A token `tally serve` makes at each start and writes to `DIR/SERVER` (mode 0600), so the
    /// admin CLI on the same machine reaches the maintenance routes (backup, merge, rollup
    /// rebuild, partition drop) without an admin token being configured: whoever can read the
    /// data directory can already read and change its data. Not a setting.
    public var controlToken: String?
    /// Which User-Agents are bots (built-in list, plus the config's file and `is_bot` overrides).
    public var bots: BotRules = .builtIn
    /// Origins, retention of properties created through the admin API when the request names none.
    public var defaultOrigins = ["*"]
    public var defaultRawRetentionDays = 90
    public var defaultRollupRetentionDays = 730

    /// Wall time after which a report query stops with an error.
    public var queryTimeoutMilliseconds = 30_000
    /// Most groups one report query may hold in memory.
    public var queryMaxGroups = 1_000_000

    public init() {}
}
