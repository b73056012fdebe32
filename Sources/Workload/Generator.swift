// Workload: a deterministic, realistic synthetic analytics workload (seed 000's `events`).
//
// Model, in short:
// - Sites: Zipf(1.1) traffic over `sites` tenants; each has a page catalogue (home, a few
//   thousand posts on big sites, device pages, categories/tags, comparisons), Zipf popularity.
// - Sessions: start times follow a diurnal/weekly curve over the span; a session is a run of
//   page visits (~2.2 visits, ~4.9 events on average) separated by log-normal dwell times under
//   the 30-minute inactivity limit. Posts show widgets (impressions, ~10 % clicked); device
//   pages add device_page_view; ~7 % of visits add a custom event.
// - Visitors: a per-site returning population (power law), ~2.4 sessions per visitor; a
//   visitor keeps source, user agent, country and region.
// - Arrival: occurred_at plus client batching and network delay; rows come out in arrival
//   order, so occurred_at is ordered only to within seconds. Optional retried duplicates.
// Files: Random (PRNG, alias tables, deterministic math), CatalogData/UserAgents (vocabulary),
// Catalog (the built catalogue), Generator (sessions and arrival order), Render (NDJSON),
// BatchRender (EventBatch columns).

import Engine

/// What to generate. The same configuration always produces the same events, byte for byte
/// (no clock, no system randomness, no platform math library is involved).
public struct WorkloadConfig: Sendable, Equatable {
    /// 2026-11-01T00:00:00Z, the default end of the generated span.
    public static let defaultEnd: Int64 = 1_793_491_200_000

    /// Seed of every random choice.
    public var seed: UInt64
    /// Number of distinct events (retried duplicates come on top, see `duplicateRate`).
    public var events: Int
    /// Number of sites (tenants); traffic is Zipf-skewed over them.
    public var sites: Int
    /// Length of the time span in days.
    public var days: Int
    /// End of the span, exclusive, in ms since the Unix epoch (UTC).
    public var end: Int64
    /// Fraction of events delivered a second time, later, with the same event_id and content
    /// (client retries). The rows total about `events * (1 + duplicateRate)`.
    public var duplicateRate: Double

    public init(
        seed: UInt64 = 42, events: Int = 100_000, sites: Int = 20, days: Int = 92,
        end: Int64 = WorkloadConfig.defaultEnd,
        duplicateRate: Double = 0
    ) {
        self.seed = seed
        self.events = events
        self.sites = sites
        self.days = days
        self.end = end
        self.duplicateRate = duplicateRate
    }

    /// Start of the span (inclusive), in ms since the Unix epoch.
    public var start: Int64 { end - Int64(days) * 86_400_000 }
}

/// Tunables of the traffic model (targets of the event-type mix and session shape).
enum WorkloadModel {
    /// Page kinds per page visit: home, post, device, section, other.
    static let pageKindWeights: [Double] = [0.10, 0.55, 0.155, 0.12, 0.075]
    /// Widget impressions per post visit (0.45 × 0.89 of events are impressions when ~0.55 of visits are posts).
    static let impressionsPerPostVisit = 1.62
    /// Clicks per impression.
    static let clickRate = 0.10
    /// Custom events per page visit.
    static let customRate = 0.067
    /// Probability of another page visit after one.
    static let continueRate = 0.56
    /// Estimated mean events per session (sizes the visitor populations).
    static let eventsPerSession = 4.9
    /// Fraction of web sessions coming from a campaign (utm-tagged landing page).
    static let campaignRate = 0.12
    /// Fraction of web sessions without a referrer (direct); app and api sessions are all direct.
    static let webDirectRate = 0.30
    /// Visitor population per site, relative to its expected sessions, and its Zipf shape.
    static let visitorsPerSession = 0.6
    static let visitorExponent = 0.6
    static let visitorOffset = 10.0
}

/// Event kinds, in the order of `EventKind.names`.
enum EventKind: UInt8 {
    case pageView = 0
    case widgetImpression, widgetClick, devicePageView, scrollDepth, outboundClick, share, siteSearch,
        newsletterSignup

    static let names: [String] = [
        "page_view", "widget_impression", "widget_click", "device_page_view", "scroll_depth", "outbound_click", "share",
        "site_search", "newsletter_signup",
    ]
}

/// One event of a session (ids into the catalogue, times, random id bits).
struct Ev {
    var t: Int64 = 0  // occurred_at, ms
    var key: Int64 = 0  // arrival at the server, ms
    var idLo: UInt64 = 0
    var idHi: UInt16 = 0
    var kind: EventKind = .pageView
    var aux: UInt8 = 0
    var flags: UInt8 = 0
    var page: Int32 = 0
    var mapping: Int32 = -1
    var num: Int32 = 0
    var extra: Int32 = 0

    static let landing: UInt8 = 1
    static let landingDevice: UInt8 = 2
    static let onPost: UInt8 = 4
}

/// What every event of a session shares.
struct SessCtx {
    var site: Int32 = 0
    var ua: Int32 = 0
    var country: Int32 = 0
    var region: Int32 = 0
    var source: UInt8 = 0  // 0 wordpress, 1 mobile_app, 2 api
    var referrer: Int32 = -1
    var campaign: Int32 = -1
    var sessionTime: Int64 = 0
    var sessionLo: UInt64 = 0
    var sessionHi: UInt16 = 0
    var visitorTime: Int64 = 0
    var visitorLo: UInt64 = 0
    var visitorHi: UInt16 = 0
    var flushPhase: Int64 = 0
}

struct SessionSlot {
    var ctx = SessCtx()
    var events: [Ev] = []
}

struct HeapEntry {
    var key: Int64
    var seq: UInt64
    var ref: Int32  // >= 0: session slot; < 0: duplicate -1-ref
    var idx: Int32
}

/// A deterministic, realistic stream of analytics events (see `WorkloadConfig`).
///
/// Sessions start along a diurnal/weekly curve over the span; each is a run of page visits
/// (page_view, widget impressions and clicks on posts, device_page_view on device pages, a
/// few custom events) by a visitor drawn from the site's returning population. Events come
/// out in arrival order (occurred_at plus a client batching/network delay), so occurred_at
/// is only roughly ordered, as at a real ingest endpoint.
public struct WorkloadGenerator: Sendable {
    public let config: WorkloadConfig
    let catalog: Catalog
    var rng: Xoshiro256
    var dupRng: Xoshiro256
    let timeCDF: [Double]
    var timeCursor = 0
    let bucketMs: Int64 = 3_600_000
    var pools: [PowerLawSampler]
    let kindTable = AliasTable(weights: WorkloadModel.pageKindWeights)
    let customTable = AliasTable(weights: [0.45, 0.2, 0.15, 0.15, 0.05])
    /// Time on a page before the next one, ms.
    let dwellTable = QuantileTable(logNormalMedian: 40_000, sigma: 1.0)
    /// Network delay of web, app and api events, ms.
    let webDelay = QuantileTable(logNormalMedian: 120, sigma: 0.6)
    let appDelay = QuantileTable(logNormalMedian: 300, sigma: 0.9)
    let apiDelay = QuantileTable(logNormalMedian: 40, sigma: 0.5)

    var reserved = 0
    var heap: [HeapEntry] = []
    var slots: [SessionSlot] = []
    var freeSlots: [Int32] = []
    var dups: [(SessCtx, Ev)] = []
    var freeDups: [Int32] = []
    var pendingSlot: Int32 = -1
    var pendingStart: Int64 = 0
    var lastReceived: Int64 = 0
    /// Last event time of recent sessions by (site, visitor), for the 30-minute rotation rule.
    var recentVisitors: [UInt64: Int64] = [:]
    var recentPruneAt = 4096
    var seq: UInt64 = 0

    /// Rows emitted so far (distinct events and duplicates).
    public private(set) var rowsEmitted = 0
    /// Duplicate rows emitted so far.
    public private(set) var duplicatesEmitted = 0

    public init(_ config: WorkloadConfig) {
        precondition(config.events >= 0, "events must be >= 0")
        precondition(config.sites >= 1, "sites must be >= 1")
        precondition(config.days >= 1, "days must be >= 1")
        precondition(config.duplicateRate >= 0 && config.duplicateRate <= 1, "duplicateRate must be in 0...1")
        precondition(config.start >= 0 && config.end < (1 << 47), "the span must lie between 1970 and 6429")
        self.config = config
        catalog = Catalog(seed: config.seed, siteCount: config.sites, spanStart: config.start, spanEnd: config.end)
        rng = Xoshiro256(seed: SplitMix64.hash(config.seed, 100))
        dupRng = Xoshiro256(seed: SplitMix64.hash(config.seed, 101))
        timeCDF = WorkloadGenerator.buildTimeCDF(config)
        let sessions = Double(config.events) / WorkloadModel.eventsPerSession
        pools = catalog.siteTable.probabilities.map { share in
            let expected = sessions * share
            return PowerLawSampler(
                count: max(20, Int(expected * WorkloadModel.visitorsPerSession)),
                exponent: WorkloadModel.visitorExponent,
                offset: WorkloadModel.visitorOffset)
        }
        prepareNextSession()
    }

    /// The site ids, largest site first.
    public var siteIDs: [String] { catalog.sites.map { catalog.string($0.id) } }

    /// True once every event (and every duplicate) has been emitted.
    public var isFinished: Bool { pendingSlot < 0 && heap.isEmpty }

    // MARK: Time shape

    static func buildTimeCDF(_ c: WorkloadConfig) -> [Double] {
        let hourW: [Double] = [
            0.35, 0.25, 0.2, 0.2, 0.3, 0.5, 0.8, 1.0, 1.15, 1.2, 1.2, 1.2, 1.15, 1.15, 1.15, 1.15, 1.2, 1.25, 1.3, 1.3,
            1.1,
            0.9, 0.7, 0.5,
        ]
        let weekW: [Double] = [1.05, 1.05, 1.03, 1.0, 0.95, 0.8, 0.85]  // Monday first
        let buckets = c.days * 24
        var r = Xoshiro256(seed: SplitMix64.hash(c.seed, 5))
        var dayFactor: [Double] = []
        for _ in 0...(c.days + 1) {
            var f = 0.9 + 0.2 * r.uniform()
            if r.chance(0.03) { f *= 1.5 + 0.7 * r.uniform() }  // news spike
            dayFactor.append(f)
        }
        var cdf = [Double](repeating: 0, count: buckets + 1)
        var acc = 0.0
        for b in 0..<buckets {
            let mid = c.start + Int64(b) * 3_600_000 + 1_800_000
            let dayNumber = mid / 86_400_000
            let hour = Int((mid % 86_400_000) / 3_600_000)
            let weekday = Int((dayNumber + 3) % 7)  // 1970-01-01 was a Thursday
            let trend = 0.9 + 0.2 * Double(b) / Double(buckets)
            acc += hourW[hour] * weekW[weekday] * trend * dayFactor[b / 24]
            cdf[b + 1] = acc
        }
        for i in 0...buckets { cdf[i] /= acc }
        cdf[buckets] = 1
        return cdf
    }

    /// The instant at fraction `f` (in [0, 1), non-decreasing between calls) of the traffic.
    mutating func timeAt(_ f: Double) -> Int64 {
        let last = timeCDF.count - 2
        while timeCursor < last && timeCDF[timeCursor + 1] <= f { timeCursor += 1 }
        let lo = timeCDF[timeCursor]
        let hi = timeCDF[timeCursor + 1]
        let frac = hi > lo ? min(max((f - lo) / (hi - lo), 0), 1) : 0
        let t = config.start + Int64(timeCursor) * bucketMs + Int64(frac * Double(bucketMs))
        return min(t, config.end - 1)
    }

    // MARK: Sessions

    mutating func allocSlot() -> Int32 {
        if let s = freeSlots.popLast() { return s }
        slots.append(SessionSlot())
        return Int32(slots.count - 1)
    }

    /// Builds the next session (if events remain) and parks it in `pendingSlot` until its start.
    mutating func prepareNextSession() {
        let remaining = config.events - reserved
        guard remaining > 0 else {
            pendingSlot = -1
            return
        }
        let slot = allocSlot()
        var events = slots[Int(slot)].events
        slots[Int(slot)].events = []
        events.removeAll(keepingCapacity: true)
        var ctx = SessCtx()
        buildSession(&ctx, &events)
        if events.count > remaining { events.removeLast(events.count - remaining) }
        let c = events.count
        let f = (Double(reserved) + rng.uniform() * Double(c)) / Double(config.events)
        reserved += c
        let start = timeAt(f)
        finalizeSession(&ctx, &events, start: start)
        slots[Int(slot)].ctx = ctx
        slots[Int(slot)].events = events
        pendingSlot = slot
        pendingStart = start
    }

    /// Draws the site, visitor and the page visits of a session, with times relative to its start.
    mutating func buildSession(_ ctx: inout SessCtx, _ events: inout [Ev]) {
        let cat = catalog
        let siteIndex = cat.siteTable.sample(&rng)
        let site = cat.sites[siteIndex]
        ctx.site = Int32(siteIndex)
        ctx.flushPhase = Int64(rng.below(5000))

        // Page visits.
        var t: Int64 = 0
        var forcedDevice = -1
        var forcedMapping: Int32 = -1
        for visit in 0..<60 {
            var pageIndex: Int32
            if forcedDevice >= 0 && site.devicePageOf[forcedDevice] >= 0 {
                pageIndex = site.devicePageOf[forcedDevice]
            } else {
                forcedMapping = -1
                switch kindTable.sample(&rng) {
                case 0: pageIndex = site.home
                case 1: pageIndex = site.posts[site.postTable.sample(&rng)]
                case 2: pageIndex = site.devicePages[site.devicePageTable.sample(&rng)]
                case 3: pageIndex = site.sections[site.sectionTable.sample(&rng)]
                default: pageIndex = site.others[site.otherTable.sample(&rng)]
                }
            }
            let page = site.pages[Int(pageIndex)]
            var ev = Ev()
            ev.t = t
            ev.page = pageIndex
            ev.flags = visit == 0 ? Ev.landing : 0
            if page.kind == .post { ev.flags |= Ev.onPost }
            events.append(ev)
            var last = t
            var leaveProbability = 1 - WorkloadModel.continueRate
            var nextForced = -1
            var nextForcedMapping: Int32 = -1

            if page.kind == .device {
                var d = Ev()
                d.kind = .devicePageView
                d.t = t + Int64(rng.range(50, 400))
                d.page = pageIndex
                if forcedMapping >= 0 {
                    d.aux = 2
                    d.num = forcedMapping
                } else {
                    d.aux = 0
                    d.num = -1
                    if visit == 0 { d.flags = Ev.landingDevice }
                }
                events.append(d)
                last = d.t
            }
            if page.kind == .post && page.widgetCount > 0 {
                var tw = t + Int64(rng.range(800, 12_000))
                for w in 0..<Int(page.widgetCount) {
                    if rng.chance(site.impressionProbability) {
                        var e = Ev()
                        e.kind = .widgetImpression
                        e.t = tw
                        e.page = pageIndex
                        e.flags = Ev.onPost
                        e.mapping = site.widgets[Int(page.widgetStart) + w]
                        e.aux = UInt8(w)
                        e.num = rng.chance(0.55) ? 100 : Int32(rng.range(50, 99))
                        events.append(e)
                        last = max(last, tw)
                        if rng.chance(WorkloadModel.clickRate) {
                            var c = e
                            c.kind = .widgetClick
                            c.t = tw + Int64(rng.range(1500, 20_000))
                            let u = rng.uniform()
                            c.aux = u < 0.5 ? 0 : (u < 0.75 ? 1 : 2)  // buy_button, specs_link, price_link
                            events.append(c)
                            last = max(last, c.t)
                            if c.aux == 1 {
                                nextForced = Int(site.mappings[Int(e.mapping)].device)
                                nextForcedMapping = e.mapping
                                leaveProbability = 0.1
                            } else {
                                leaveProbability = 0.7
                            }
                        }
                    }
                    tw += Int64(rng.range(1500, 25_000))
                }
            }
            if rng.chance(WorkloadModel.customRate) {
                var e = Ev()
                e.page = pageIndex
                e.t = t + Int64(rng.range(3000, 90_000))
                var k = customTable.sample(&rng)
                if k == 0 && page.kind != .post { k = 3 }
                switch k {
                case 0:
                    e.kind = .scrollDepth
                    e.flags = Ev.onPost
                    e.num = Int32(25 * (1 + rng.below(4)))
                case 1:
                    e.kind = .outboundClick
                    e.num = Int32(rng.below(site.outbound.count))
                case 2:
                    e.kind = .share
                    e.aux = UInt8(rng.below(cat.shareNetworks.count))
                    if page.kind == .post { e.flags = Ev.onPost }
                case 3:
                    e.kind = .siteSearch
                    e.num = Int32(cat.searchTable.sample(&rng))
                    e.extra = Int32(rng.chance(0.1) ? 0 : rng.range(1, 120))
                default:
                    e.kind = .newsletterSignup
                    e.aux = UInt8(rng.below(cat.newsletterForms.count))
                }
                events.append(e)
                last = max(last, e.t)
            }
            if rng.chance(leaveProbability) { break }
            forcedDevice = nextForced
            forcedMapping = nextForcedMapping
            // Dwell before the next page: log-normal, under the 30-minute inactivity limit.
            var dwell = Int64(dwellTable.sample(&rng))
            dwell = min(max(dwell, 4000), 25 * 60_000)
            t = max(t + dwell, last + Int64(rng.range(1000, 5000)))
        }
        // Order by time (stable insertion sort; nearly sorted already).
        if events.count > 1 {
            for i in 1..<events.count {
                let x = events[i]
                var j = i - 1
                while j >= 0 && events[j].t > x.t {
                    events[j + 1] = events[j]
                    j -= 1
                }
                events[j + 1] = x
            }
        }
    }

    /// Draws the session's visitor from the site's returning population, skipping visitors
    /// with another session less than 30 minutes away (sessions rotate after 30 minutes of
    /// inactivity, so those would be the same session), and sets the visitor's attributes.
    mutating func chooseVisitor(_ ctx: inout SessCtx, first: Int64, last: Int64) {
        let cat = catalog
        let siteIndex = Int(ctx.site)
        let site = cat.sites[siteIndex]
        let gap: Int64 = 30 * 60_000
        if recentVisitors.count > recentPruneAt {
            recentVisitors = recentVisitors.filter { $0.value + gap > first }
            recentPruneAt = max(4096, recentVisitors.count * 2)
        }
        var visitor = 0
        var key: UInt64 = 0
        for _ in 0..<16 {
            visitor = pools[siteIndex].sample(&rng)
            key = UInt64(siteIndex) << 40 | UInt64(visitor)
            guard let end = recentVisitors[key], end + gap > first else { break }
        }
        recentVisitors[key] = max(recentVisitors[key] ?? .min, last)

        // The visitor's stable attributes.
        var vr = Xoshiro256(seed: SplitMix64.hash(config.seed, 77, UInt64(siteIndex), UInt64(visitor)))
        let su = vr.uniform()
        ctx.source = su < 0.85 ? 0 : (su < 0.95 ? 1 : 2)
        switch ctx.source {
        case 0: ctx.ua = cat.uaWebIndex[cat.uaWeb.sample(&vr)]
        case 1: ctx.ua = cat.uaAppIndex[cat.uaApp.sample(&vr)]
        default: ctx.ua = vr.chance(0.3) ? cat.uaSDKIndex[cat.uaSDK.sample(&vr)] : cat.uaWebIndex[cat.uaWeb.sample(&vr)]
        }
        ctx.country =
            site.ru
            ? cat.countryIndexRU[cat.countryTableRU.sample(&vr)] : cat.countryIndexEN[cat.countryTableEN.sample(&vr)]
        ctx.region = Int32(cat.countries[Int(ctx.country)].regionTable.sample(&vr))
        ctx.visitorTime = config.start - Int64(vr.below(365 * 86_400_000))
        ctx.visitorLo = vr.next()
        ctx.visitorHi = UInt16(truncatingIfNeeded: vr.next())
    }

    /// Places a session at `start`: absolute times, visitor, campaign and referrer, ids, arrival times.
    mutating func finalizeSession(_ ctx: inout SessCtx, _ events: inout [Ev], start: Int64) {
        let site = catalog.sites[Int(ctx.site)]

        // Absolute times; squeeze a session that would run past the end of the span.
        let lastRel = events.last?.t ?? 0
        let room = config.end - 1 - start
        let squeeze = lastRel > room
        for i in events.indices {
            var rel = events[i].t
            if squeeze { rel = Int64(Double(rel) * Double(room) / Double(lastRel)) }
            events[i].t = start + rel
        }
        let first = events.first?.t ?? start
        let last = events.last?.t ?? start
        chooseVisitor(&ctx, first: first, last: last)

        // Campaign (web and app sessions; app campaigns are pushes) and referrer.
        ctx.campaign = -1
        ctx.referrer = -1
        if ctx.source != 2 && rng.chance(ctx.source == 0 ? WorkloadModel.campaignRate : 0.04) {
            for _ in 0..<4 {
                let k = site.campaignTable.sample(&rng)
                let c = site.campaigns[k]
                if c.start <= start && start < c.end && (ctx.source == 0 || c.referrer < 0) {
                    ctx.campaign = Int32(k)
                    ctx.referrer = c.referrer
                    break
                }
            }
        }
        if ctx.campaign < 0 && ctx.source == 0 && !rng.chance(WorkloadModel.webDirectRate) {
            ctx.referrer = Int32(site.ru ? catalog.referrerTableRU.sample(&rng) : catalog.referrerTableEN.sample(&rng))
        }
        if ctx.referrer >= 0 && catalog.referrerIsSearch[Int(ctx.referrer)] {
            for i in events.indices where events[i].flags & Ev.landingDevice != 0 { events[i].aux = 1 }
        }
        ctx.sessionTime = first
        ctx.sessionLo = rng.next()
        ctx.sessionHi = UInt16(truncatingIfNeeded: rng.next())

        // Event ids and arrival times (client batching + network).
        for i in events.indices {
            let t = events[i].t
            events[i].idLo = rng.next()
            events[i].idHi = UInt16(truncatingIfNeeded: rng.next())
            var delay: Int64
            switch ctx.source {
            case 0:
                delay = Int64(min(max(webDelay.sample(&rng), 15), 4000))
                if !rng.chance(0.35) { delay += 5000 - (t - ctx.flushPhase) %% 5000 }
            case 1:
                delay = Int64(min(max(appDelay.sample(&rng), 30), 20_000))
                if !rng.chance(0.2) { delay += 15_000 - (t - ctx.flushPhase * 3) %% 15_000 }
            default:
                delay = Int64(min(max(apiDelay.sample(&rng), 5), 2000))
            }
            events[i].key = t + delay
        }
    }

    // MARK: Arrival order

    @inline(__always) static func less(_ a: HeapEntry, _ b: HeapEntry) -> Bool {
        a.key < b.key || (a.key == b.key && a.seq < b.seq)
    }

    mutating func push(key: Int64, ref: Int32, idx: Int32) {
        seq &+= 1
        var i = heap.count
        heap.append(HeapEntry(key: key, seq: seq, ref: ref, idx: idx))
        let e = heap[i]
        while i > 0 {
            let p = (i - 1) / 2
            if !WorkloadGenerator.less(e, heap[p]) { break }
            heap[i] = heap[p]
            i = p
        }
        heap[i] = e
    }

    mutating func popMin() -> HeapEntry {
        let top = heap[0]
        let last = heap.removeLast()
        if !heap.isEmpty {
            var i = 0
            let n = heap.count
            while true {
                let l = 2 * i + 1
                if l >= n { break }
                var c = l
                if l + 1 < n && WorkloadGenerator.less(heap[l + 1], heap[l]) { c = l + 1 }
                if !WorkloadGenerator.less(heap[c], last) { break }
                heap[i] = heap[c]
                i = c
            }
            heap[i] = last
        }
        return top
    }

    /// The next row in arrival order: the session context, the event and its received_at.
    mutating func nextRow() -> (SessCtx, Ev, Int64)? {
        while pendingSlot >= 0 && (heap.isEmpty || pendingStart <= heap[0].key) {
            let s = pendingSlot
            push(key: slots[Int(s)].events[0].key, ref: s, idx: 0)
            prepareNextSession()
        }
        guard !heap.isEmpty else { return nil }
        let top = popMin()
        let ctx: SessCtx
        let ev: Ev
        if top.ref >= 0 {
            let s = Int(top.ref)
            let i = Int(top.idx)
            ctx = slots[s].ctx
            ev = slots[s].events[i]
            if i + 1 < slots[s].events.count {
                push(key: slots[s].events[i + 1].key, ref: top.ref, idx: top.idx + 1)
            } else {
                freeSlots.append(top.ref)
            }
        } else {
            let d = Int(-1 - top.ref)
            (ctx, ev) = dups[d]
            freeDups.append(Int32(d))
            duplicatesEmitted += 1
        }
        let received = max(top.key, lastReceived)
        lastReceived = received
        if top.ref >= 0 && config.duplicateRate > 0 && dupRng.chance(config.duplicateRate) {
            // A retry: the same event again, 0.1 s to ~1 min later.
            let delay = Int64(100 << dupRng.below(10)) + Int64(dupRng.below(1000))
            let d: Int32
            if let f = freeDups.popLast() {
                d = f
                dups[Int(d)] = (ctx, ev)
            } else {
                d = Int32(dups.count)
                dups.append((ctx, ev))
            }
            push(key: received + delay, ref: -1 - d, idx: 0)
        }
        rowsEmitted += 1
        return (ctx, ev, received)
    }
}

infix operator %% : MultiplicationPrecedence

/// Floored modulo (non-negative for a positive divisor).
@inline(__always) func %% (a: Int64, b: Int64) -> Int64 {
    let r = a % b
    return r < 0 ? r + b : r
}
