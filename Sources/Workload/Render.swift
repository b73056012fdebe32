import Engine

/// A write cursor over a fixed scratch buffer (one line or one value at a time).
@usableFromInline struct LineBuf {
    @usableFromInline let p: UnsafeMutablePointer<UInt8>
    @usableFromInline var n = 0

    @inlinable init(_ p: UnsafeMutablePointer<UInt8>) { self.p = p }

    @inlinable @inline(__always) mutating func byte(_ b: UInt8) {
        p[n] = b
        n &+= 1
    }

    @inlinable @inline(__always) mutating func lit(_ s: StaticString) {
        let c = s.utf8CodeUnitCount
        (p + n).update(from: s.utf8Start, count: c)
        n &+= c
    }

    @inlinable @inline(__always) mutating func bytes(_ src: UnsafePointer<UInt8>, _ c: Int) {
        let dst = UnsafeMutableRawPointer(p + n)
        let s = UnsafeRawPointer(src)
        if c >= 8 && c <= 16 {
            // Two overlapping 8-byte moves instead of a memmove call.
            dst.storeBytes(of: s.loadUnaligned(as: UInt64.self), as: UInt64.self)
            (dst + (c &- 8)).storeBytes(of: (s + (c &- 8)).loadUnaligned(as: UInt64.self), as: UInt64.self)
        } else if c < 8 {
            var i = 0
            while i < c {
                p[n &+ i] = src[i]
                i &+= 1
            }
        } else {
            dst.copyMemory(from: s, byteCount: c)
        }
        n &+= c
    }

    @inlinable @inline(__always) mutating func int(_ v: Int64) {
        var x = v
        if x < 0 {
            byte(UInt8(ascii: "-"))
            x = -x
        }
        if x < 10 {
            byte(UInt8(truncatingIfNeeded: 48 &+ x))
            return
        }
        var digits = 0
        var y = x
        while y > 0 {
            digits &+= 1
            y /= 10
        }
        var i = n &+ digits &- 1
        while x > 0 {
            p[i] = UInt8(truncatingIfNeeded: 48 &+ x % 10)
            x /= 10
            i &-= 1
        }
        n &+= digits
    }

    @inlinable @inline(__always) mutating func two(_ v: Int) {
        p[n] = UInt8(truncatingIfNeeded: 48 &+ v / 10)
        p[n &+ 1] = UInt8(truncatingIfNeeded: 48 &+ v % 10)
        n &+= 2
    }

    /// A 26-character ULID (Crockford base32): 48-bit ms time, then 80 random bits.
    @inlinable @inline(__always) mutating func ulid(time: Int64, hi: UInt16, lo: UInt64) {
        let a = Crockford.alphabet.utf8Start
        let q = p + n
        let t = UInt64(truncatingIfNeeded: time) & 0xFFFF_FFFF_FFFF
        q[0] = a[Int(t >> 45)]
        q[1] = a[Int((t >> 40) & 31)]
        q[2] = a[Int((t >> 35) & 31)]
        q[3] = a[Int((t >> 30) & 31)]
        q[4] = a[Int((t >> 25) & 31)]
        q[5] = a[Int((t >> 20) & 31)]
        q[6] = a[Int((t >> 15) & 31)]
        q[7] = a[Int((t >> 10) & 31)]
        q[8] = a[Int((t >> 5) & 31)]
        q[9] = a[Int(t & 31)]
        // 80 random bits: the top 20 (hi and 4 bits of lo), then the low 60 bits of lo.
        let top = (UInt64(hi) << 4) | (lo >> 60)
        q[10] = a[Int(top >> 15)]
        q[11] = a[Int((top >> 10) & 31)]
        q[12] = a[Int((top >> 5) & 31)]
        q[13] = a[Int(top & 31)]
        var i = 14
        var shift: UInt64 = 55
        while i < 26 {
            q[i] = a[Int((lo >> shift) & 31)]
            i &+= 1
            shift &-= 5
        }
        n &+= 26
    }

    /// `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC).
    @inlinable mutating func iso8601(_ ms: Int64) {
        var days = ms / 86_400_000
        var rem = ms % 86_400_000
        if rem < 0 {
            rem += 86_400_000
            days -= 1
        }
        let (y, m, d) = Civil.fromDays(days)
        let yy = Int(y)
        two(yy / 100)
        two(yy % 100)
        byte(UInt8(ascii: "-"))
        two(m)
        byte(UInt8(ascii: "-"))
        two(d)
        byte(UInt8(ascii: "T"))
        let secs = Int(rem / 1000)
        two(secs / 3600)
        byte(UInt8(ascii: ":"))
        two(secs / 60 % 60)
        byte(UInt8(ascii: ":"))
        two(secs % 60)
        byte(UInt8(ascii: "."))
        let msPart = Int(rem % 1000)
        byte(UInt8(truncatingIfNeeded: 48 &+ msPart / 100))
        two(msPart % 100)
        byte(UInt8(ascii: "Z"))
    }
}

@usableFromInline enum Crockford {
    @usableFromInline static var alphabet: StaticString { "0123456789ABCDEFGHJKMNPQRSTVWXYZ" }
}

/// Proleptic Gregorian calendar conversions (H. Hinnant's algorithms).
public enum Civil {
    @inlinable public static func fromDays(_ z0: Int64) -> (year: Int64, month: Int, day: Int) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = Int(doy - (153 * mp + 2) / 5 + 1)
        let m = Int(mp < 10 ? mp + 3 : mp - 9)
        return (m <= 2 ? y + 1 : y, m, d)
    }

    @inlinable public static func days(year y0: Int64, month m: Int, day d: Int) -> Int64 {
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mm = Int64(m)
        let doy = (153 * (mm > 2 ? mm - 3 : mm + 9) + 2) / 5 + Int64(d) - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// Formats ms since the epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    public static func format(_ ms: Int64) -> String {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 32) { buf in
            var w = LineBuf(buf.baseAddress!)
            w.iso8601(ms)
            return String(decoding: UnsafeBufferPointer(start: buf.baseAddress!, count: w.n), as: UTF8.self)
        }
    }

    /// Parses `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM[:SS[.fff]]` with an optional `Z` or `±HH:MM` offset
    /// (no offset means UTC) into ms since the epoch.
    public static func parse(_ s: String) -> Int64? {
        let b = Array(s.utf8)
        var i = 0
        func num(_ width: Int) -> Int? {
            guard i + width <= b.count else { return nil }
            var v = 0
            for k in 0..<width {
                let c = b[i + k]
                guard c >= 48 && c <= 57 else { return nil }
                v = v * 10 + Int(c - 48)
            }
            i += width
            return v
        }
        func expect(_ c: UInt8) -> Bool {
            guard i < b.count && b[i] == c else { return false }
            i += 1
            return true
        }
        guard let y = num(4), expect(UInt8(ascii: "-")), let mo = num(2), expect(UInt8(ascii: "-")), let d = num(2),
            (1...12).contains(mo), (1...31).contains(d)
        else { return nil }
        var ms = days(year: Int64(y), month: mo, day: d) * 86_400_000
        if i == b.count { return ms }
        guard expect(UInt8(ascii: "T")) || expect(UInt8(ascii: " ")), let h = num(2), expect(UInt8(ascii: ":")),
            let mi = num(2), h < 24, mi < 60
        else { return nil }
        ms += Int64(h * 3_600_000 + mi * 60_000)
        if expect(UInt8(ascii: ":")) {
            guard let sec = num(2), sec < 61 else { return nil }
            ms += Int64(sec * 1000)
            if expect(UInt8(ascii: ".")) {
                var scale = 100
                var frac = 0
                var any = false
                while i < b.count, b[i] >= 48, b[i] <= 57 {
                    frac += Int(b[i] - 48) * scale
                    scale /= 10
                    i += 1
                    any = true
                }
                guard any else { return nil }
                ms += Int64(frac)
            }
        }
        if i == b.count || expect(UInt8(ascii: "Z")) { return i == b.count ? ms : nil }
        let sign: Int64
        if expect(UInt8(ascii: "+")) { sign = 1 } else if expect(UInt8(ascii: "-")) { sign = -1 } else { return nil }
        guard let oh = num(2), expect(UInt8(ascii: ":")), let om = num(2), i == b.count else { return nil }
        return ms - sign * Int64(oh * 3_600_000 + om * 60_000)
    }
}

extension Catalog {
    @inline(__always) func ptr(_ s: BStr) -> UnsafePointer<UInt8> { UnsafePointer(base + Int(s.off)) }

    func string(_ s: JStr) -> String {
        String(decoding: UnsafeBufferPointer(start: ptr(s.raw), count: Int(s.raw.len)), as: UTF8.self)
    }
}

extension LineBuf {
    @inline(__always) mutating func put(_ c: Catalog, _ s: BStr) {
        bytes(c.base + Int(s.off), Int(s.len))
    }
}

let eventTypeNames: [StaticString] = [
    "page_view", "widget_impression", "widget_click", "device_page_view", "scroll_depth", "outbound_click", "share",
    "site_search", "newsletter_signup",
]
let sourceNames: [StaticString] = ["wordpress", "mobile_app", "api"]
private let clickTargets: [StaticString] = ["buy_button", "specs_link", "price_link"]
private let viewSources: [StaticString] = ["direct", "search", "widget_click"]

extension WorkloadGenerator {
    /// Longest line the renderer can produce (the catalogue's strings are far shorter).
    static let maxLine = 16_384

    static func version(_ k: EventKind) -> Int64 { k == .scrollDepth ? 2 : 1 }

    /// Writes the properties object of an event (JSON text, `{...}`).
    func writeProperties(_ ctx: SessCtx, _ ev: Ev, _ w: inout LineBuf) {
        let cat = catalog
        let si = Int(ctx.site)
        switch ev.kind {
        case .pageView:
            w.lit("{}")
        case .widgetImpression:
            let m = cat.sites[si].mappings[Int(ev.mapping)]
            w.lit("{\"mapping_id\":")
            w.int(m.id)
            w.lit(",\"post_id\":")
            w.int(cat.sites[si].pages[Int(ev.page)].postID)
            w.lit(",\"widget_index\":")
            w.int(Int64(ev.aux))
            w.lit(",\"device_slug\":\"")
            w.put(cat, cat.devices[Int(m.device)].slug.esc)
            w.lit("\",\"viewport_percent\":")
            w.int(Int64(ev.num))
            w.byte(UInt8(ascii: "}"))
        case .widgetClick:
            let m = cat.sites[si].mappings[Int(ev.mapping)]
            let slug = cat.devices[Int(m.device)].slug.esc
            w.lit("{\"mapping_id\":")
            w.int(m.id)
            w.lit(",\"post_id\":")
            w.int(cat.sites[si].pages[Int(ev.page)].postID)
            w.lit(",\"device_slug\":\"")
            w.put(cat, slug)
            w.lit("\",\"click_target\":\"")
            w.lit(clickTargets[Int(ev.aux)])
            w.lit("\",\"destination_url\":\"")
            switch ev.aux {
            case 0:
                w.put(cat, cat.sites[si].buyPrefix.esc)
                w.put(cat, slug)
                w.put(cat, cat.sites[si].buySuffix.esc)
            case 1:
                w.put(cat, cat.sites[si].specsPrefix.esc)
                w.put(cat, slug)
            default:
                w.put(cat, cat.sites[si].pricePrefix.esc)
                w.put(cat, slug)
                w.put(cat, cat.sites[si].priceSuffix.esc)
            }
            w.lit("\"}")
        case .devicePageView:
            let d = cat.devices[Int(cat.sites[si].pages[Int(ev.page)].device)]
            w.lit("{\"device_id\":\"")
            w.put(cat, d.deviceID.esc)
            w.lit("\",\"device_slug\":\"")
            w.put(cat, d.slug.esc)
            w.lit("\",\"brand\":\"")
            w.put(cat, d.brand.esc)
            w.lit("\",\"view_source\":\"")
            w.lit(viewSources[Int(ev.aux)])
            if ev.num >= 0 {
                w.lit("\",\"referrer_mapping_id\":")
                w.int(cat.sites[si].mappings[Int(ev.num)].id)
                w.byte(UInt8(ascii: "}"))
            } else {
                w.lit("\"}")
            }
        case .scrollDepth:
            w.lit("{\"post_id\":")
            w.int(cat.sites[si].pages[Int(ev.page)].postID)
            w.lit(",\"depth_percent\":")
            w.int(Int64(ev.num))
            w.byte(UInt8(ascii: "}"))
        case .outboundClick:
            w.lit("{\"url\":\"")
            w.put(cat, cat.sites[si].outbound[Int(ev.num)].esc)
            w.lit("\"}")
        case .share:
            w.lit("{\"network\":\"")
            w.put(cat, cat.shareNetworks[Int(ev.aux)].esc)
            if ev.flags & Ev.onPost != 0 {
                w.lit("\",\"post_id\":")
                w.int(cat.sites[si].pages[Int(ev.page)].postID)
                w.byte(UInt8(ascii: "}"))
            } else {
                w.lit("\"}")
            }
        case .siteSearch:
            w.lit("{\"query\":\"")
            w.put(cat, cat.searchQueries[Int(ev.num)].esc)
            w.lit("\",\"results\":")
            w.int(Int64(ev.extra))
            w.byte(UInt8(ascii: "}"))
        case .newsletterSignup:
            w.lit("{\"form\":\"")
            w.put(cat, cat.newsletterForms[Int(ev.aux)].esc)
            w.lit("\"}")
        }
    }

    @inline(__always) static func hasTitle(_ ev: Ev) -> Bool {
        ev.kind == .pageView || ev.kind == .devicePageView
    }

    @inline(__always) static func hasCampaign(_ ctx: SessCtx, _ ev: Ev) -> Bool {
        ctx.campaign >= 0 && ev.kind == .pageView && ev.flags & Ev.landing != 0
    }

    /// prop_mapping_id, prop_post_id, prop_device_slug of an event (nil when the properties lack them).
    func extracted(_ ctx: SessCtx, _ ev: Ev) -> (mapping: Int64?, post: Int64?, slug: BStr?) {
        let site = Int(ctx.site)
        switch ev.kind {
        case .widgetImpression, .widgetClick:
            let m = catalog.sites[site].mappings[Int(ev.mapping)]
            return (m.id, catalog.sites[site].pages[Int(ev.page)].postID, catalog.devices[Int(m.device)].slug.raw)
        case .devicePageView:
            let d = catalog.sites[site].pages[Int(ev.page)].device
            return (nil, nil, catalog.devices[Int(d)].slug.raw)
        case .scrollDepth:
            return (nil, catalog.sites[site].pages[Int(ev.page)].postID, nil)
        case .share where ev.flags & Ev.onPost != 0:
            return (nil, catalog.sites[site].pages[Int(ev.page)].postID, nil)
        default:
            return (nil, nil, nil)
        }
    }

    /// Writes one NDJSON line (with its newline).
    func writeLine(_ ctx: SessCtx, _ ev: Ev, _ w: inout LineBuf) {
        let cat = catalog
        let si = Int(ctx.site)
        let page = cat.sites[si].pages[Int(ev.page)]
        let ua = cat.uas[Int(ctx.ua)]
        let country = cat.countries[Int(ctx.country)]
        w.lit("{\"event_id\":\"")
        w.ulid(time: ev.t, hi: ev.idHi, lo: ev.idLo)
        w.lit("\",\"event_type\":\"")
        w.lit(eventTypeNames[Int(ev.kind.rawValue)])
        w.lit("\",\"event_version\":")
        w.int(WorkloadGenerator.version(ev.kind))
        w.lit(",\"occurred_at\":\"")
        w.iso8601(ev.t)
        w.lit("\",\"source\":\"")
        w.lit(sourceNames[Int(ctx.source)])
        w.lit("\",\"site_id\":\"")
        w.put(cat, cat.sites[si].id.esc)
        w.lit("\",\"session_id\":\"")
        w.ulid(time: ctx.sessionTime, hi: ctx.sessionHi, lo: ctx.sessionLo)
        w.lit("\",\"visitor_id\":\"")
        w.ulid(time: ctx.visitorTime, hi: ctx.visitorHi, lo: ctx.visitorLo)
        w.lit("\",\"page_url\":\"https://")
        w.put(cat, cat.sites[si].domain.esc)
        w.put(cat, page.path.esc)
        w.lit("\",\"page_path\":\"")
        w.put(cat, page.path.esc)
        w.lit("\",\"referrer_domain\":\"")
        if ctx.referrer >= 0 { w.put(cat, cat.referrers[Int(ctx.referrer)].esc) }
        w.lit("\",\"user_agent\":\"")
        w.put(cat, ua.ua.esc)
        w.lit("\",\"device_type\":\"")
        w.put(cat, ua.device.esc)
        w.lit("\",\"country_code\":\"")
        w.put(cat, country.code.esc)
        w.lit("\",\"region\":\"")
        w.put(cat, country.regions[Int(ctx.region)].esc)
        w.lit("\",\"properties\":")
        writeProperties(ctx, ev, &w)
        if WorkloadGenerator.hasTitle(ev) {
            w.lit(",\"page_title\":\"")
            w.put(cat, page.title.esc)
            w.byte(UInt8(ascii: "\""))
        }
        if WorkloadGenerator.hasCampaign(ctx, ev) {
            let c = cat.sites[si].campaigns[Int(ctx.campaign)]
            w.lit(",\"campaign_id\":\"")
            w.put(cat, c.id.esc)
            w.lit("\",\"utm_source\":\"")
            w.put(cat, c.source.esc)
            w.lit("\",\"utm_medium\":\"")
            w.put(cat, c.medium.esc)
            w.lit("\",\"utm_campaign\":\"")
            w.put(cat, c.name.esc)
            w.byte(UInt8(ascii: "\""))
        }
        if ua.hasBrowser {
            w.lit(",\"browser\":\"")
            w.put(cat, ua.browser.esc)
            w.lit("\",\"os\":\"")
            w.put(cat, ua.os.esc)
            w.byte(UInt8(ascii: "\""))
        }
        w.lit("}\n")
    }

    /// Appends up to `n` events as NDJSON lines (one flat seed-000 event object per line) and
    /// returns how many were appended (fewer only when the stream is exhausted).
    public mutating func nextNDJSON(_ n: Int, into out: inout [UInt8]) -> Int {
        guard n > 0 else { return 0 }
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: WorkloadGenerator.maxLine) { buf in
            let scratch = buf.baseAddress!
            var count = 0
            out.reserveCapacity(out.count + min(n, 1 << 16) * 800)
            while count < n, let (ctx, ev, _) = nextRow() {
                var w = LineBuf(scratch)
                writeLine(ctx, ev, &w)
                out.append(contentsOf: UnsafeBufferPointer(start: scratch, count: w.n))
                count += 1
            }
            return count
        }
    }
}
