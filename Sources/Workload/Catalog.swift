// The generator's catalogue: sites with their pages, devices, widget mappings and campaigns;
// user agents, referrers, countries and regions. Built once from the seed (and the time span,
// for campaign windows), then read-only. Every string lives in one byte arena, both as raw
// UTF-8 (for columns) and JSON-escaped (for NDJSON), so rendering is memcpy only.

/// A byte range in the catalogue's arena.
@usableFromInline struct BStr: Sendable {
    @usableFromInline var off: Int32
    @usableFromInline var len: Int32
}

/// A string in raw and JSON-escaped form (the same range when nothing needs escaping).
@usableFromInline struct JStr: Sendable {
    @usableFromInline var raw: BStr
    @usableFromInline var esc: BStr
}

enum PageKind: UInt8 {
    case home = 0
    case post, device, section, other
}

struct PageModel {
    var path: JStr
    var title: JStr
    var kind: PageKind
    var postID: Int64 = 0
    var widgetStart: Int32 = 0
    var widgetCount: Int32 = 0
    var device: Int32 = -1
}

struct MappingModel {
    var id: Int64
    var device: Int32
}

struct DeviceModel {
    var name: String
    var slugString: String
    var brandString: String
    var category: String
    var slug: JStr
    var brand: JStr
    var deviceID: JStr
}

struct CampaignModel {
    var id: JStr
    var source: JStr
    var medium: JStr
    var name: JStr
    var referrer: Int32  // -1: direct
    var start: Int64
    var end: Int64
}

/// A site (tenant) and its page catalogue. A class: read on every event, never copied.
final class SiteModel {
    let id: JStr
    let domain: JStr
    let ru: Bool
    let weight: Double
    let pages: [PageModel]
    let home: Int32
    let posts: [Int32]
    let postTable: AliasTable
    let devicePages: [Int32]
    let devicePageTable: AliasTable
    /// Page index of each global device's page on this site, or -1.
    let devicePageOf: [Int32]
    let sections: [Int32]
    let sectionTable: AliasTable
    let others: [Int32]
    let otherTable: AliasTable
    /// Mapping indices; a post's widgets are `widgetStart..<widgetStart+widgetCount`.
    let widgets: [Int32]
    let mappings: [MappingModel]
    /// First mapping of each global device on this site, or -1.
    let mappingOf: [Int32]
    let impressionProbability: Double
    let campaigns: [CampaignModel]
    let campaignTable: AliasTable
    let buyPrefix: JStr
    let buySuffix: JStr
    let pricePrefix: JStr
    let priceSuffix: JStr
    /// `https://<domain>/devices/`
    let specsPrefix: JStr
    let outbound: [JStr]

    init(
        id: JStr,
        domain: JStr,
        ru: Bool,
        weight: Double,
        pages: [PageModel],
        home: Int32,
        posts: [Int32],
        postTable: AliasTable,
        devicePages: [Int32],
        devicePageTable: AliasTable,
        devicePageOf: [Int32],
        sections: [Int32],
        sectionTable: AliasTable,
        others: [Int32],
        otherTable: AliasTable,
        widgets: [Int32],
        mappings: [MappingModel],
        mappingOf: [Int32],
        impressionProbability: Double,
        campaigns: [CampaignModel],
        campaignTable: AliasTable,
        buyPrefix: JStr,
        buySuffix: JStr,
        pricePrefix: JStr,
        priceSuffix: JStr,
        specsPrefix: JStr,
        outbound: [JStr]
    ) {
        self.id = id
        self.domain = domain
        self.ru = ru
        self.weight = weight
        self.pages = pages
        self.home = home
        self.posts = posts
        self.postTable = postTable
        self.devicePages = devicePages
        self.devicePageTable = devicePageTable
        self.devicePageOf = devicePageOf
        self.sections = sections
        self.sectionTable = sectionTable
        self.others = others
        self.otherTable = otherTable
        self.widgets = widgets
        self.mappings = mappings
        self.mappingOf = mappingOf
        self.impressionProbability = impressionProbability
        self.campaigns = campaigns
        self.campaignTable = campaignTable
        self.buyPrefix = buyPrefix
        self.buySuffix = buySuffix
        self.pricePrefix = pricePrefix
        self.priceSuffix = priceSuffix
        self.specsPrefix = specsPrefix
        self.outbound = outbound
    }
}

struct CountryModel {
    var code: JStr
    var regions: [JStr]
    var regionTable: AliasTable
}

struct UAModel {
    var ua: JStr
    var device: JStr
    var browser: JStr
    var os: JStr
    var hasBrowser: Bool
}

/// Builds the arena.
struct ArenaBuilder {
    var bytes: [UInt8] = []
    var index: [String: JStr] = [:]

    mutating func add(_ s: String) -> JStr {
        if let j = index[s] { return j }
        let raw = Array(s.utf8)
        let rawRef = BStr(off: Int32(bytes.count), len: Int32(raw.count))
        bytes += raw
        let esc = ArenaBuilder.escape(raw)
        var escRef = rawRef
        if esc != raw {
            escRef = BStr(off: Int32(bytes.count), len: Int32(esc.count))
            bytes += esc
        }
        let j = JStr(raw: rawRef, esc: escRef)
        index[s] = j
        return j
    }

    /// JSON string escaping: `"`, `\` and control characters; other bytes (UTF-8) as they are.
    static func escape(_ raw: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(raw.count)
        let hex = Array("0123456789abcdef".utf8)
        for b in raw {
            switch b {
            case UInt8(ascii: "\""): out += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
            case UInt8(ascii: "\\"): out += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
            case 0x0A: out += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
            case 0x0D: out += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
            case 0x09: out += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
            case 0x08: out += [UInt8(ascii: "\\"), UInt8(ascii: "b")]
            case 0x0C: out += [UInt8(ascii: "\\"), UInt8(ascii: "f")]
            case 0..<0x20:
                out += Array("\\u00".utf8)
                out.append(hex[Int(b >> 4)])
                out.append(hex[Int(b & 15)])
            default: out.append(b)
            }
        }
        return out
    }
}

final class Catalog: @unchecked Sendable {
    let base: UnsafeMutablePointer<UInt8>
    let arenaSize: Int

    let sites: [SiteModel]
    let siteTable: AliasTable
    let devices: [DeviceModel]
    let uas: [UAModel]
    let uaWeb: AliasTable
    let uaWebIndex: [Int32]
    let uaApp: AliasTable
    let uaAppIndex: [Int32]
    let uaSDK: AliasTable
    let uaSDKIndex: [Int32]
    let countries: [CountryModel]
    let countryTableRU: AliasTable
    let countryIndexRU: [Int32]
    let countryTableEN: AliasTable
    let countryIndexEN: [Int32]
    let referrers: [JStr]
    let referrerIsSearch: [Bool]
    let referrerTableRU: AliasTable
    let referrerTableEN: AliasTable
    let searchQueries: [JStr]
    let searchTable: AliasTable
    let shareNetworks: [JStr]
    let newsletterForms: [JStr]
    let empty: JStr

    // The span the catalogue was built for.
    let spanStart: Int64
    let spanEnd: Int64

    init(seed: UInt64, siteCount: Int, spanStart: Int64, spanEnd: Int64) {
        self.spanStart = spanStart
        self.spanEnd = spanEnd
        var a = ArenaBuilder()
        empty = a.add("")

        // Devices, most popular first.
        var rng = Xoshiro256(seed: SplitMix64.hash(seed, 1))
        struct RawDevice {
            var brand: String
            var name: String
            var year: Double
            var category: String
        }
        var raw: [RawDevice] = []
        let brandBoost: [String: Double] = [
            "Apple": 1.6, "Samsung": 1.3, "Xiaomi": 0.9, "Google": 0.5, "POCO": 0.3, "Honor": 0.3,
        ]
        for f in CatalogData.families {
            for (i, m) in f.models.enumerated() {
                raw.append(
                    RawDevice(
                        brand: f.brand, name: m, year: Double(f.firstYear) + Double(i) / Double(f.perYear),
                        category: f.kind))
            }
        }
        // Nothing released after the span (unless that would leave too few devices).
        let lastYear = Double(Civil.fromDays((spanEnd - 1) / 86_400_000).year) + 0.99
        let released = raw.filter { $0.year <= lastYear }
        if released.count >= 60 { raw = released }
        var scored = raw.map { d -> (RawDevice, Double) in
            let catBoost = d.category == "phones" ? 0.6 : 0
            return (d, min(d.year, lastYear - 0.49) + (brandBoost[d.brand] ?? 0) + catBoost + rng.uniform() * 2.5)
        }
        scored.sort { $0.1 > $1.1 }
        var devices: [DeviceModel] = []
        var usedSlugs = Set<String>()
        for (i, (d, _)) in scored.enumerated() {
            var slug = Catalog.slugify(d.name)
            while usedSlugs.contains(slug) { slug += "-2" }
            usedSlugs.insert(slug)
            let id = 10_000 + i * 37 + Int(SplitMix64.hash(seed, 2, UInt64(i)) % 37)
            devices.append(
                DeviceModel(
                    name: d.name, slugString: slug, brandString: d.brand, category: d.category, slug: a.add(slug),
                    brand: a.add(d.brand), deviceID: a.add("dev_\(Catalog.pad(id, 6))")))
        }
        self.devices = devices
        let deviceZipf = AliasTable.zipfWeights(devices.count, exponent: 1.0, offset: 1)

        // User agents.
        var uas: [UAModel] = []
        var webW: [Double] = []
        var webI: [Int32] = []
        var appW: [Double] = []
        var appI: [Int32] = []
        var sdkW: [Double] = []
        var sdkI: [Int32] = []
        for u in UserAgents.all {
            let idx = Int32(uas.count)
            uas.append(
                UAModel(
                    ua: a.add(u.ua), device: a.add(u.device), browser: a.add(u.browser ?? ""), os: a.add(u.os ?? ""),
                    hasBrowser: u.browser != nil))
            switch u.group {
            case .web:
                webW.append(u.weight)
                webI.append(idx)
            case .app:
                appW.append(u.weight)
                appI.append(idx)
            case .sdk:
                sdkW.append(u.weight)
                sdkI.append(idx)
            }
        }
        self.uas = uas
        uaWeb = AliasTable(weights: webW)
        uaWebIndex = webI
        uaApp = AliasTable(weights: appW)
        uaAppIndex = appI
        uaSDK = AliasTable(weights: sdkW)
        uaSDKIndex = sdkI

        // Countries and regions.
        var codes: [String] = []
        var seen = Set<String>()
        for c in CatalogData.countriesEN + CatalogData.countriesRU where !seen.contains(c) {
            seen.insert(c)
            codes.append(c)
        }
        var countries: [CountryModel] = []
        var countryPos: [String: Int32] = [:]
        for c in codes {
            var regionNames = CatalogData.regions[c] ?? []
            if regionNames.isEmpty {
                let n = 1 + Int(SplitMix64.hash(seed, 3, UInt64(countries.count)) % 3)
                regionNames = (1...n).map { Catalog.pad($0, 2) }
            }
            countryPos[c] = Int32(countries.count)
            countries.append(
                CountryModel(
                    code: a.add(c), regions: regionNames.map { a.add($0) },
                    regionTable: AliasTable(zipf: regionNames.count, exponent: 1.0, offset: 0.5)))
        }
        self.countries = countries
        var ruW = AliasTable.zipfWeights(CatalogData.countriesRU.count, exponent: 1.5)
        ruW[0] *= 2.5
        countryTableRU = AliasTable(weights: ruW)
        countryIndexRU = CatalogData.countriesRU.map { countryPos[$0]! }
        var enW = AliasTable.zipfWeights(CatalogData.countriesEN.count, exponent: 1.1)
        enW[0] *= 1.5
        countryTableEN = AliasTable(weights: enW)
        countryIndexEN = CatalogData.countriesEN.map { countryPos[$0]! }

        // Referrers: the real head, then a synthetic tail.
        var refNames: [String] = []
        var refSeen = Set<String>()
        for r in CatalogData.referrerHead where !refSeen.contains(r) {
            refSeen.insert(r)
            refNames.append(r)
        }
        var trng = Xoshiro256(seed: SplitMix64.hash(seed, 4))
        while refNames.count < CatalogData.referrerCount {
            let pattern = CatalogData.tailPatterns[trng.below(CatalogData.tailPatterns.count)]
            var name = ""
            for ch in pattern {
                if ch == "*" {
                    name += CatalogData.tailWords[trng.below(CatalogData.tailWords.count)]
                } else {
                    name.append(ch)
                }
            }
            if !refSeen.contains(name) {
                refSeen.insert(name)
                refNames.append(name)
            }
        }
        referrers = refNames.map { a.add($0) }
        referrerIsSearch = refNames.map { n in
            n == "go.mail.ru" || n == "search.yahoo.com"
                || [
                    "google.", "yandex.", "bing.com", "duckduckgo.com", "ya.ru", "ecosia.org", "baidu.com", "naver.com",
                ]
                .contains { n.hasPrefix($0) }
        }
        let refBase = AliasTable.zipfWeights(refNames.count, exponent: 1.15)
        func ruish(_ n: String) -> Bool {
            n.hasSuffix(".ru") || n.hasPrefix("yandex.") || n == "t.me" || n == "vk.com" || n == "ok.ru"
                || n == "4pda.to"
                || n.hasSuffix(".kz") || n.hasSuffix(".by") || n == "habr.com" || n == "vc.ru" || n == "ya.ru"
        }
        referrerTableRU = AliasTable(weights: zip(refNames, refBase).map { ruish($0) ? $1 * 3 : $1 * 0.5 })
        referrerTableEN = AliasTable(weights: zip(refNames, refBase).map { ruish($0) ? $1 * 0.1 : $1 })
        let refPos = Dictionary(uniqueKeysWithValues: refNames.enumerated().map { ($1, Int32($0)) })

        // Search queries, share networks, forms.
        var queries = devices.prefix(60).map { $0.name.lowercased() }
        queries += devices.prefix(30).map { $0.name.lowercased() + " review" }
        queries += CatalogData.searchExtras
        searchQueries = queries.map { a.add($0) }
        searchTable = AliasTable(zipf: queries.count, exponent: 0.9, offset: 2)
        shareNetworks = CatalogData.shareNetworks.map { a.add($0) }
        newsletterForms = CatalogData.newsletterForms.map { a.add($0) }

        // Sites.
        let seeds = Catalog.siteSeeds(siteCount)
        let siteW = AliasTable.zipfWeights(siteCount, exponent: 1.1)
        siteTable = AliasTable(weights: siteW)
        var sites: [SiteModel] = []
        for (s, ss) in seeds.enumerated() {
            sites.append(
                Catalog.buildSite(
                    index: s, seed: seed, site: ss, ratio: siteW[s] / siteW[0], weight: siteW[s], devices: devices,
                    deviceZipf: deviceZipf, refPos: refPos, spanStart: spanStart, spanEnd: spanEnd, arena: &a))
        }
        self.sites = sites

        arenaSize = a.bytes.count
        base = .allocate(capacity: max(1, arenaSize))
        a.bytes.withUnsafeBufferPointer { base.initialize(from: $0.baseAddress!, count: arenaSize) }
    }

    deinit { base.deallocate() }

    // MARK: Helpers

    static func pad(_ n: Int, _ width: Int) -> String {
        let s = String(n)
        return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
    }

    static func slugify(_ s: String) -> String {
        var out = ""
        var dash = false
        for ch in s.lowercased() {
            if ch == "+" {
                out += dash || out.isEmpty ? "plus" : "-plus"
                dash = false
            } else if ch.isASCII && (ch.isLetter || ch.isNumber) {
                out.append(ch)
                dash = false
            } else if !out.isEmpty && !dash {
                out.append("-")
                dash = true
            }
        }
        while out.hasSuffix("-") { out.removeLast() }
        return out
    }

    static func siteSeeds(_ n: Int) -> [CatalogData.SiteSeed] {
        var out = Array(CatalogData.sites.prefix(n))
        var used = Set(out.map(\.id))
        var i = 0
        while out.count < n {
            let p = CatalogData.sitePrefixes[i % CatalogData.sitePrefixes.count]
            let q = CatalogData.siteSuffixes[(i / CatalogData.sitePrefixes.count) % CatalogData.siteSuffixes.count]
            let round = i / (CatalogData.sitePrefixes.count * CatalogData.siteSuffixes.count)
            let id = round == 0 ? p + q : "\(p)\(q)\(round + 1)"
            i += 1
            if used.contains(id) { continue }
            used.insert(id)
            let ru = out.count % 3 == 1
            out.append(
                CatalogData.SiteSeed(
                    id: id, domain: id + (ru ? ".ru" : ".com"),
                    name: p.prefix(1).uppercased() + p.dropFirst() + q.prefix(1).uppercased() + q.dropFirst(), ru: ru))
        }
        return out
    }

    // swiftlint:disable:next function_body_length
    static func buildSite(
        index s: Int, seed: UInt64, site: CatalogData.SiteSeed, ratio: Double, weight: Double, devices: [DeviceModel],
        deviceZipf: [Double], refPos: [String: Int32], spanStart: Int64, spanEnd: Int64, arena a: inout ArenaBuilder
    ) -> SiteModel {
        var rng = Xoshiro256(seed: SplitMix64.hash(seed, 10, UInt64(s)))
        let ru = site.ru
        let name = site.name
        let suffix = " | " + name
        let domain = site.domain
        var pages: [PageModel] = []
        var paths = Set<String>()

        func addPage(_ path: String, _ title: String, _ kind: PageKind) -> Int32 {
            var p = path
            var k = 2
            while paths.contains(p) {
                p = path.hasSuffix("/") ? String(path.dropLast()) + "-\(k)/" : path + "-\(k)"
                k += 1
            }
            paths.insert(p)
            pages.append(PageModel(path: a.add(p), title: a.add(title), kind: kind))
            return Int32(pages.count - 1)
        }

        // Home.
        let home = addPage("/", name + (ru ? " — новости и обзоры гаджетов" : " — gadget news and reviews"), .home)

        // Device pages: the popular head always, the rest by coverage.
        let coverage = min(1, 0.3 + 0.7 * DetMath.pow(ratio, 0.3))
        var devicePageOf = [Int32](repeating: -1, count: devices.count)
        var siteDevices: [Int] = []
        var devicePages: [Int32] = []
        var devW: [Double] = []
        for (i, d) in devices.enumerated() where i < 60 || rng.chance(coverage) {
            let title = ru ? "\(d.name): характеристики, цены и обзоры" : "\(d.name): specs, prices and reviews"
            let p = addPage("/devices/" + d.slugString, title + suffix, .device)
            pages[Int(p)].device = Int32(i)
            devicePageOf[i] = p
            siteDevices.append(i)
            devicePages.append(p)
            devW.append(deviceZipf[i])
        }
        let siteDeviceTable = AliasTable(weights: devW)

        // Widget mappings: one per device, a second (another raw model text) for some.
        var mappings: [MappingModel] = []
        var mappingOf = [Int32](repeating: -1, count: devices.count)
        var mappingsOfDevice = [[Int32]](repeating: [], count: devices.count)
        var nextID = Int64(100_000 + s * 10_000)
        for d in siteDevices {
            let n = rng.chance(0.3) ? 2 : 1
            for _ in 0..<n {
                nextID += Int64(1 + rng.below(3))
                mappingsOfDevice[d].append(Int32(mappings.count))
                mappings.append(MappingModel(id: nextID, device: Int32(d)))
            }
            mappingOf[d] = mappingsOfDevice[d][0]
        }
        func mappingFor(_ d: Int, _ rng: inout Xoshiro256) -> Int32 {
            let m = mappingsOfDevice[d]
            return m.count == 1 || rng.chance(0.75) ? m[0] : m[rng.below(m.count)]
        }

        // Posts, published over the 8 years before the end of the span.
        let (endYear, endMonthOfYear, _) = Civil.fromDays((spanEnd - 1) / 86_400_000)
        let endMonth = Int(endYear) * 12 + endMonthOfYear - 1
        let year = Int(endYear)
        let postCount = max(120, Int((3500 * DetMath.pow(ratio, 0.5)).rounded()))
        let style = s % 3
        var postID = 1000 + rng.below(5000)
        var widgets: [Int32] = []
        var posts: [Int32] = []
        let templateW: [Double] = [0.2, 0.12, 0.1, 0.08, 0.12, 0.1, 0.08, 0.08, 0.05, 0.07]
        let templates = AliasTable(weights: templateW)
        let widgetCounts = AliasTable(weights: [0.2, 0.3, 0.25, 0.15, 0.1])
        for j in 0..<postCount {
            postID += 1 + rng.below(40)
            let t = templates.sample(&rng)
            let d = siteDevices[siteDeviceTable.sample(&rng)]
            var d2 = siteDevices[siteDeviceTable.sample(&rng)]
            if d2 == d { d2 = siteDevices[(siteDevices.firstIndex(of: d)! + 1) % siteDevices.count] }
            let dev = devices[d]
            let dev2 = devices[d2]
            let cat = rng.below(5)
            let catSlug = CatalogData.categories[cat]
            let n = 3 + rng.below(60)
            let price = (ru ? 20_000 : 200) + rng.below(ru ? 90 : 90) * (ru ? 1000 : 10)
            let verdict = rng.below(CatalogData.verdictsEN.count)
            let action = rng.below(CatalogData.actionsEN.count)
            let phrase = rng.below(CatalogData.phrasesEN.count)
            let brandSlug = Catalog.slugify(dev.brandString)
            var title: String
            var slug: String
            switch (t, ru) {
            case (0, false):
                title = "\(dev.name) review: \(CatalogData.verdictsEN[verdict])"
                slug = "\(dev.slugString)-review"
            case (0, true):
                title = "Обзор \(dev.name): \(CatalogData.verdictsRU[verdict])"
                slug = "obzor-\(dev.slugString)"
            case (1, false):
                title = "\(dev.name) vs \(dev2.name): which one should you buy?"
                slug = "\(dev.slugString)-vs-\(dev2.slugString)"
            case (1, true):
                title = "\(dev.name) против \(dev2.name): что выбрать?"
                slug = "\(dev.slugString)-protiv-\(dev2.slugString)"
            case (2, false):
                title = "\(dev.name) hands-on: first impressions"
                slug = "\(dev.slugString)-hands-on"
            case (2, true):
                title = "Первый взгляд на \(dev.name)"
                slug = "pervyj-vzglyad-na-\(dev.slugString)"
            case (3, false):
                title = "\(dev.name) camera test: \(n) photos in every light"
                slug = "\(dev.slugString)-camera-test"
            case (3, true):
                title = "Тест камеры \(dev.name): \(n) снимков днём и ночью"
                slug = "test-kamery-\(dev.slugString)"
            case (4, false):
                title = "\(dev.brandString) announces the \(dev.name)"
                slug = "\(brandSlug)-announces-\(dev.slugString)"
            case (4, true):
                title = "\(dev.brandString) представила \(dev.name)"
                slug = "\(brandSlug)-predstavila-\(dev.slugString)"
            case (5, false):
                title = "\(dev.name) price drops to $\(price)"
                slug = "\(dev.slugString)-price-drop-\(price)"
            case (5, true):
                title = "\(dev.name) подешевел до \(price) ₽"
                slug = "\(dev.slugString)-podeshevel-do-\(price)"
            case (6, false):
                title = "Best \(CatalogData.categoryNamesEN[cat].lowercased()) of \(year)"
                slug = "best-\(catSlug)-\(year)"
            case (6, true):
                title = "Лучшие \(CatalogData.categoryNamesRU[cat].lowercased()) \(year) года"
                slug = "luchshie-\(catSlug)-\(year)"
            case (7, false):
                let act = CatalogData.actionsEN[action]
                title = "How to \(act.replacingDashes()) on \(dev.name)"
                slug = "how-to-\(act)-\(dev.slugString)"
            case (7, true):
                title = "Как \(CatalogData.actionsRU[action]) на \(dev.name)"
                slug = "kak-\(CatalogData.actionsEN[action])-\(dev.slugString)"
            case (8, false):
                title = "\(dev.name) battery test: \"\(CatalogData.phrasesEN[phrase])\" is the word"
                slug = "\(dev.slugString)-battery-test"
            case (8, true):
                title = "Тест автономности \(dev.name): \"\(CatalogData.phrasesRU[phrase])\""
                slug = "test-avtonomnosti-\(dev.slugString)"
            case (_, false):
                title = "\(dev.brandString) confirms the launch date of its next flagship"
                slug = "\(brandSlug)-launch-date-\(n)"
            default:
                title = "\(dev.brandString) назвала дату презентации нового флагмана"
                slug = "\(brandSlug)-data-prezentacii-\(n)"
            }
            let path: String
            switch style {
            case 0: path = "/post/\(postID)-\(slug)"
            case 1:
                let month = endMonth - 95 + (j * 96) / postCount
                path = "/\(month / 12)/\(Catalog.pad(month % 12 + 1, 2))/\(slug)/"
            default: path = "/news/\(slug)-\(postID)"
            }
            let p = addPage(path, title + suffix, .post)
            pages[Int(p)].postID = Int64(postID)
            pages[Int(p)].widgetStart = Int32(widgets.count)
            switch t {
            case 9: break
            case 6:
                for _ in 0..<(3 + rng.below(3)) {
                    widgets.append(mappingFor(siteDevices[siteDeviceTable.sample(&rng)], &rng))
                }
            default:
                pages[Int(p)].device = Int32(d)
                var count = 1 + widgetCounts.sample(&rng)
                widgets.append(mappingFor(d, &rng))
                if t == 1 {
                    widgets.append(mappingFor(d2, &rng))
                    count = max(count, 2)
                }
                while widgets.count - Int(pages[Int(p)].widgetStart) < count {
                    widgets.append(mappingFor(siteDevices[siteDeviceTable.sample(&rng)], &rng))
                }
            }
            pages[Int(p)].widgetCount = Int32(widgets.count) - pages[Int(p)].widgetStart
            posts.append(p)
        }
        // Popularity: newer posts tend to rank higher; Zipf over the ranks.
        var keys = (0..<postCount).map { j in (Double(postCount - 1 - j) * (0.2 + 1.6 * rng.uniform()), j) }
        keys.sort { $0.0 < $1.0 || ($0.0 == $1.0 && $0.1 < $1.1) }
        let rankedPosts = keys.map { posts[$0.1] }
        let postW = AliasTable.zipfWeights(postCount, exponent: 1.0, offset: 2)
        let postTable = AliasTable(weights: postW)
        var expectedWidgets = 0.0
        for (r, p) in rankedPosts.enumerated() {
            expectedWidgets += postTable.probabilities[r] * Double(pages[Int(p)].widgetCount)
        }
        let impressionProbability = min(1, WorkloadModel.impressionsPerPostVisit / max(expectedWidgets, 0.01))

        // Sections: categories, then tags.
        var sections: [Int32] = []
        for (i, c) in CatalogData.categories.enumerated() {
            let title = (ru ? CatalogData.categoryNamesRU[i] : CatalogData.categoryNamesEN[i]) + suffix
            sections.append(addPage("/category/\(c)", title, .section))
        }
        for t in CatalogData.tags { sections.append(addPage("/tag/\(t)", "#\(t)" + suffix, .section)) }

        // Other pages: static ones, comparisons, top lists.
        var others: [Int32] = []
        for (i, p) in CatalogData.otherPaths.enumerated() {
            let namesEN = ["About us", "Contacts", "Search", "Deals", "Authors", "Privacy policy"]
            let namesRU = ["О нас", "Контакты", "Поиск", "Скидки", "Авторы", "Политика конфиденциальности"]
            others.append(addPage(p, (ru ? namesRU[i] : namesEN[i]) + suffix, .other))
        }
        let compareCount = 5 + Int((45 * DetMath.pow(ratio, 0.5)).rounded())
        for _ in 0..<compareCount {
            let d1 = devices[siteDevices[siteDeviceTable.sample(&rng)]]
            let d2 = devices[siteDevices[siteDeviceTable.sample(&rng)]]
            if d1.slugString == d2.slugString { continue }
            let title = ru ? "Сравнение \(d1.name) и \(d2.name)" : "Compare \(d1.name) and \(d2.name)"
            others.append(addPage("/compare/\(d1.slugString)-vs-\(d2.slugString)", title + suffix, .other))
        }
        for (i, c) in CatalogData.categories.prefix(8).enumerated() {
            let title =
                ru
                ? "Топ: \(CatalogData.categoryNamesRU[i].lowercased())"
                : "Top \(CatalogData.categoryNamesEN[i].lowercased())"
            others.append(addPage("/top/best-\(c)", title + suffix, .other))
        }
        // Shuffle the others' popularity a little (static pages are not always first).
        for i in stride(from: others.count - 1, to: 0, by: -1) where rng.chance(0.5) {
            others.swapAt(i, rng.below(i + 1))
        }

        // Campaigns with activity windows.
        let sources = ru ? CatalogData.campaignSourcesRU : CatalogData.campaignSourcesEN
        let campaignCount = 5 + Int((25 * DetMath.pow(ratio, 0.5)).rounded())
        let span = spanEnd - spanStart
        var campaigns: [CampaignModel] = []
        for k in 0..<campaignCount {
            let src = sources[min(sources.count - 1, Int(Double(sources.count) * rng.uniform() * rng.uniform() * 1.6))]
            var cname = ""
            for ch in CatalogData.campaignNames[rng.below(CatalogData.campaignNames.count)] {
                if ch == "#" { cname += String(year) } else { cname.append(ch) }
            }
            if cname.hasSuffix("digest") { cname += "-\(1 + rng.below(40))" }
            if rng.chance(0.3) { cname = "\(devices[siteDevices[siteDeviceTable.sample(&rng)]].slugString)-launch" }
            let length = Int64(7 + rng.below(54)) * 86_400_000
            let start = spanStart - 10 * 86_400_000 + Int64(rng.uniform() * Double(span))
            campaigns.append(
                CampaignModel(
                    id: a.add("cmp_\(s * 1000 + 101 + k * 3)"), source: a.add(src.source), medium: a.add(src.medium),
                    name: a.add(cname), referrer: src.referrer.isEmpty ? -1 : (refPos[src.referrer] ?? -1),
                    start: start,
                    end: start + length))
        }
        let campaignTable = AliasTable(zipf: campaignCount, exponent: 0.8)

        let outbound = [
            "https://t.me/\(site.id)", ru ? "https://vk.com/\(site.id)" : "https://x.com/\(site.id)",
            "https://www.youtube.com/@\(site.id)",
            ru ? "https://dzen.ru/\(site.id)" : "https://www.facebook.com/\(site.id)",
        ]

        return SiteModel(
            id: a.add(site.id), domain: a.add(domain), ru: ru, weight: weight, pages: pages, home: home,
            posts: rankedPosts,
            postTable: postTable, devicePages: devicePages, devicePageTable: siteDeviceTable,
            devicePageOf: devicePageOf,
            sections: sections, sectionTable: AliasTable(zipf: sections.count, exponent: 1.0, offset: 1),
            others: others, otherTable: AliasTable(zipf: others.count, exponent: 1.0, offset: 1), widgets: widgets,
            mappings: mappings, mappingOf: mappingOf, impressionProbability: impressionProbability,
            campaigns: campaigns, campaignTable: campaignTable,
            buyPrefix: a.add(ru ? "https://market.yandex.ru/search?text=" : "https://www.amazon.com/s?k="),
            buySuffix: a.add(ru ? "&clid=\(2_300_000 + s * 17)" : "&tag=\(site.id)-20"),
            pricePrefix: a.add(
                ru ? "https://www.e-katalog.ru/ek-list.php?search_=" : "https://www.ebay.com/sch/i.html?_nkw="),
            priceSuffix: a.add(ru ? "" : "&campid=53\(Catalog.pad(s, 8))"),
            specsPrefix: a.add("https://\(domain)/devices/"),
            outbound: outbound.map { a.add($0) })
    }
}

extension String {
    fileprivate func replacingDashes() -> String {
        String(map { $0 == "-" ? " " : $0 })
    }
}
