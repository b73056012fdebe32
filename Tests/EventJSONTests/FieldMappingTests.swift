import Engine
import EventJSON
import Testing

@Suite("Field mapping")
struct FieldMappingTests {
    static let flatEvent = """
        {"event_id":"01HQZX3K5M7N9P1R3T5V7X9Z1B","event_type":"widget_impression","event_version":3,
         "occurred_at":"2024-01-15T10:30:00.250Z","received_at":"1999-01-01T00:00:00Z","source":"wordpress",
         "site_id":"click-or-die.ru","session_id":"s_abc123","visitor_id":"v_xyz789",
         "page_url":"https://click-or-die.ru/post/123?utm_source=x#top","page_path":"/post/123",
         "referrer_domain":"google.com","user_agent":"Mozilla/5.0 (X11; Linux x86_64)","device_type":"desktop",
         "country_code":"RU","region":"MOW",
         "properties":{"mapping_id":456,"post_id":123,"widget_index":0,"device_slug":"iphone-15-pro","viewport_percent":100},
         "page_title":"Post 123","campaign_id":"cmp_789","utm_source":"google","utm_medium":"cpc",
         "utm_campaign":"winter-sale","utm_term":"phones","utm_content":"banner","user_id_hash":"sha256:ab",
         "browser":"Firefox","os":"Linux"}
        """

    @Test("every field of a flat seed-000 event lands in its column")
    func flatEventRoundTrips() throws {
        let r = try decodeEvent(FieldMappingTests.flatEvent)
        #expect(r.errors == [])
        #expect(r.accepted == 1)
        let b = r.batch
        #expect(b.string(.eventID) == "01HQZX3K5M7N9P1R3T5V7X9Z1B")
        #expect(b.string(.eventType) == "widget_impression")
        #expect(b.int(.eventVersion) == 3)
        #expect(b.int(.occurredAt) == 1_705_314_600_250)
        #expect(b.int(.receivedAt) == serverTime)
        #expect(b.string(.source) == "wordpress")
        #expect(b.string(.siteID) == "click-or-die.ru")
        #expect(b.string(.sessionID) == "s_abc123")
        #expect(b.string(.visitorID) == "v_xyz789")
        #expect(b.string(.pageURL) == "https://click-or-die.ru/post/123?utm_source=x#top")
        #expect(b.string(.pagePath) == "/post/123")
        #expect(b.string(.referrerDomain) == "google.com")
        #expect(b.string(.userAgent) == "Mozilla/5.0 (X11; Linux x86_64)")
        #expect(b.string(.deviceType) == "desktop")
        #expect(b.string(.countryCode) == "RU")
        #expect(b.string(.region) == "MOW")
        #expect(
            b.string(.properties)
                == #"{"mapping_id":456,"post_id":123,"widget_index":0,"device_slug":"iphone-15-pro","viewport_percent":100}"#)
        #expect(b.int(.propMappingID) == 456)
        #expect(b.int(.propPostID) == 123)
        #expect(b.string(.propDeviceSlug) == "iphone-15-pro")
        #expect(b.string(.pageTitle) == "Post 123")
        #expect(b.string(.campaignID) == "cmp_789")
        #expect(b.string(.utmSource) == "google")
        #expect(b.string(.utmMedium) == "cpc")
        #expect(b.string(.utmCampaign) == "winter-sale")
        #expect(b.string(.utmTerm) == "phones")
        #expect(b.string(.utmContent) == "banner")
        #expect(b.string(.userIDHash) == "sha256:ab")
        #expect(b.string(.browser) == "Firefox")
        #expect(b.string(.os) == "Linux")
    }

    @Test("the seed-000 request example decodes with defaults for what it leaves out")
    func seed000Example() throws {
        let r = try decode("""
            {
              "events": [
                {
                  "event_type": "widget_impression",
                  "occurred_at": "2024-01-15T10:30:00.000Z",
                  "session_id": "s_abc123",
                  "visitor_id": "v_xyz789",
                  "page_url": "https://click-or-die.ru/post/123",
                  "properties": {
                    "mapping_id": 456,
                    "post_id": 123,
                    "widget_index": 0,
                    "device_slug": "iphone-15-pro",
                    "viewport_percent": 100
                  }
                }
              ]
            }
            """)
        #expect(r.errors == [])
        let b = r.batch
        #expect(b.count == 1)
        #expect(b.string(.eventID) == "")  // the engine assigns a ULID
        #expect(b.int(.eventVersion) == 1)
        #expect(b.int(.occurredAt) == 1_705_314_600_000)
        #expect(b.string(.source) == "")
        #expect(b.string(.siteID) == "default-site")
        #expect(b.string(.pagePath) == "/post/123")
        #expect(b.string(.referrerDomain) == "")
        #expect(b.int(.propMappingID) == 456)
        #expect(b.int(.propPostID) == 123)
        #expect(b.string(.propDeviceSlug) == "iphone-15-pro")
        #expect(b.string(.pageTitle) == nil)
        #expect(b.string(.userIDHash) == nil)
        #expect(b.string(.browser) == "")
        #expect(r.envelopePropertyID == nil)
    }

    @Test("the seed-003 envelope maps type, ts, context, identity and data to their columns")
    func seed003EnvelopeRoundTrips() throws {
        let r = try decode("""
            {
              "schema_version": 1,
              "property_id": "prop_123",
              "sent_at": "2026-01-24T18:12:33Z",
              "events": [
                {
                  "event_id": "01HR0000000000000000000000",
                  "type": "pageview",
                  "ts": "2026-01-24T18:12:33Z",
                  "context": {
                    "page": {
                      "url": "https://example.com/products/sku1?ref=mail",
                      "path": "/products/sku1",
                      "title": "Product page",
                      "referrer": "https://www.Google.com:443/search?q=x"
                    },
                    "campaign": {
                      "campaign_id": "cmp_789",
                      "utm": {"source": "google", "medium": "cpc", "campaign": "winter-sale", "term": "t", "content": "c"}
                    }
                  },
                  "identity": {"visitor_id": "v_abc123", "session_id": "s_def456", "user_id_hash": "sha256:ff"},
                  "data": {"mapping_id": 7, "post_id": -2, "device_slug": "pixel-8", "extra": [1, {"a": null}]}
                }
              ]
            }
            """)
        #expect(r.errors == [])
        #expect(r.envelopePropertyID == "prop_123")
        let b = r.batch
        #expect(b.count == 1)
        #expect(b.string(.eventID) == "01HR0000000000000000000000")
        #expect(b.string(.eventType) == "pageview")
        #expect(b.int(.occurredAt) == 1_769_278_353_000)
        #expect(b.int(.receivedAt) == serverTime)
        #expect(b.string(.siteID) == "prop_123")
        #expect(b.string(.pageURL) == "https://example.com/products/sku1?ref=mail")
        #expect(b.string(.pagePath) == "/products/sku1")
        #expect(b.string(.pageTitle) == "Product page")
        #expect(b.string(.referrerDomain) == "www.google.com")
        #expect(b.string(.campaignID) == "cmp_789")
        #expect(b.string(.utmSource) == "google")
        #expect(b.string(.utmMedium) == "cpc")
        #expect(b.string(.utmCampaign) == "winter-sale")
        #expect(b.string(.utmTerm) == "t")
        #expect(b.string(.utmContent) == "c")
        #expect(b.string(.visitorID) == "v_abc123")
        #expect(b.string(.sessionID) == "s_def456")
        #expect(b.string(.userIDHash) == "sha256:ff")
        #expect(b.string(.properties) == #"{"mapping_id": 7, "post_id": -2, "device_slug": "pixel-8", "extra": [1, {"a": null}]}"#)
        #expect(b.int(.propMappingID) == 7)
        #expect(b.int(.propPostID) == -2)
        #expect(b.string(.propDeviceSlug) == "pixel-8")
    }

    @Test("an envelope's property_id is the site of its events even when it comes after them")
    func propertyIDAfterEvents() throws {
        let r = try decode("""
            {"events":[{"type":"pageview"},{"type":"pageview","site_id":"own"}],"property_id":"late"}
            """)
        #expect(r.batch.string(.siteID, 0) == "late")
        #expect(r.batch.string(.siteID, 1) == "own")
        #expect(r.envelopePropertyID == "late")
    }

    @Test("a seed-003 event with a missing or invalid ts takes the server's time")
    func seed003TimeFallsBackToServerTime() throws {
        let r = try decode("""
            {"property_id":"p","events":[{"type":"pageview"},{"type":"pageview","ts":"yesterday"},
             {"type":"pageview","ts":{"no":1}},{"type":"pageview","ts":1700000000123}]}
            """)
        #expect(r.errors == [])
        #expect(r.batch.int(.occurredAt, 0) == serverTime)
        #expect(r.batch.int(.occurredAt, 1) == serverTime)
        #expect(r.batch.int(.occurredAt, 2) == serverTime)
        #expect(r.batch.int(.occurredAt, 3) == 1_700_000_000_123)
    }

    @Test("a flat event without occurred_at takes the server's time, but a bad one is rejected")
    func flatTime() throws {
        let r = try decode(#"[{"event_type":"a"},{"event_type":"a","occurred_at":null},{"event_type":"a","occurred_at":"bad"}]"#)
        #expect(r.batch.count == 2)
        #expect(r.batch.int(.occurredAt, 0) == serverTime)
        #expect(r.batch.int(.occurredAt, 1) == serverTime)
        #expect(r.errors.map(\.index) == [2])
        #expect(r.errors.first?.field == "occurred_at")
    }

    @Test("JSON null and absence give null in nullable columns and the default elsewhere")
    func nulls() throws {
        let r = try decodeEvent("""
            {"event_type":"e","event_id":null,"event_version":null,"source":null,"site_id":null,"session_id":null,
             "page_url":null,"page_path":null,"page_title":null,"campaign_id":null,"utm_source":null,"utm_medium":null,
             "utm_campaign":null,"utm_term":null,"utm_content":null,"user_id_hash":null,"browser":null,"os":null,
             "properties":null,"referrer":null,"referrer_domain":null}
            """)
        #expect(r.errors == [])
        let b = r.batch
        #expect(b.string(.eventID) == "")
        #expect(b.int(.eventVersion) == 1)
        #expect(b.string(.source) == "")
        #expect(b.string(.siteID) == "default-site")
        #expect(b.string(.pageURL) == "")
        #expect(b.string(.pagePath) == "")
        #expect(b.string(.referrerDomain) == "")
        #expect(b.string(.properties) == "{}")
        #expect(b.int(.propMappingID) == nil)
        #expect(b.int(.propPostID) == nil)
        for c: EventColumn in [.propDeviceSlug, .pageTitle, .campaignID, .utmSource, .utmMedium, .utmCampaign, .utmTerm,
                               .utmContent, .userIDHash] {
            #expect(b.string(c) == nil, "\(c.name)")
        }
        #expect(b.string(.browser) == "")
        #expect(b.string(.os) == "")
    }

    @Test("properties members of other types leave the extracted columns null")
    func propertiesExtraction() throws {
        let r = try decode("""
            [{"event_type":"e","properties":{"mapping_id":"456","post_id":1.5,"device_slug":7}},
             {"event_type":"e","properties":{"mapping_id":99999999999999999999,"post_id":1e3,"device_slug":null}},
             {"event_type":"e","properties":{"nested":{"mapping_id":1,"post_id":2,"device_slug":"x"}}},
             {"event_type":"e","properties":{}},
             {"event_type":"e","properties":{"mapping_id":-9223372036854775808,"post_id":9223372036854775807}}]
            """)
        #expect(r.errors == [])
        for row in 0..<4 {
            #expect(r.batch.int(.propMappingID, row) == nil)
            #expect(r.batch.int(.propPostID, row) == nil)
            #expect(r.batch.string(.propDeviceSlug, row) == nil)
        }
        #expect(r.batch.string(.properties, 3) == "{}")
        #expect(r.batch.int(.propMappingID, 4) == Int64.min)
        #expect(r.batch.int(.propPostID, 4) == Int64.max)
    }

    @Test("page_path is derived from page_url when the event sends none", arguments: [
        ("https://example.com/a/b?q=1#f", "/a/b"),
        ("https://example.com", "/"),
        ("https://example.com?q=1", "/"),
        ("https://user:pw@example.com:8080/x/y/#z", "/x/y/"),
        ("//example.com/p", "/p"),
        ("/relative/path?x", "/relative/path"),
        ("about:blank", ""),
        ("", ""),
    ])
    func pagePathDerived(url: String, path: String) throws {
        let r = try decodeEvent(#"{"event_type":"e","page_url":"\#(url)"}"#)
        #expect(r.batch.string(.pagePath) == path)
        #expect(r.batch.string(.pageURL) == url)
    }

    @Test("referrer_domain is the lowercased host of referrer when the event sends none", arguments: [
        ("https://www.Google.com/search?q=1", "www.google.com"),
        ("http://user:pw@Example.org:8080/", "example.org"),
        ("https://[2001:db8::1]:443/x", "[2001:db8::1]"),
        ("android-app://com.google.android.gm/", "com.google.android.gm"),
        ("google.com/search", "google.com"),
        ("about:blank", ""),
        ("/relative", ""),
        ("", ""),
    ])
    func referrerDomainDerived(referrer: String, host: String) throws {
        let r = try decodeEvent(#"{"event_type":"e","referrer":"\#(referrer)"}"#)
        #expect(r.batch.string(.referrerDomain) == host)
    }

    @Test("an explicit page_path and referrer_domain win over derived ones")
    func explicitWins() throws {
        let r = try decodeEvent(
            #"{"event_type":"e","page_url":"https://a.com/x","page_path":"/mine","referrer":"https://b.com/","referrer_domain":"Mine"}"#)
        #expect(r.batch.string(.pagePath) == "/mine")
        #expect(r.batch.string(.referrerDomain) == "Mine")
    }

    @Test("unknown members are skipped at every level, whatever their type")
    func unknownMembers() throws {
        let r = try decode("""
            {"future":{"a":[1,2,{"b":[[[]]]}]},"events":[{"zzz":[true,false,null,-1.5e-3,"\\u00e9"],"event_type":"e",
             "context":{"page":{"url":"https://a.com/p","weird":{"x":1}},"device":{"w":1}},"identity":{"other":"x"},
             "properties":{"x":{"y":[1,2,3]}}}],"schema_version":2,"extra":"x"}
            """)
        #expect(r.errors == [])
        #expect(r.batch.string(.pagePath) == "/p")
        #expect(r.batch.string(.properties) == #"{"x":{"y":[1,2,3]}}"#)
    }

    @Test("a single event object and a top-level array are requests too")
    func otherShapes() throws {
        let single = try decode(#"{"event_type":"one","page_url":"https://a.com/"}"#)
        #expect(single.batch.count == 1)
        #expect(single.batch.string(.eventType) == "one")
        let array = try decode(#"[{"event_type":"a"},{"type":"b","identity":{"visitor_id":"v"}}]"#)
        #expect(array.batch.count == 2)
        #expect(array.batch.string(.eventType, 1) == "b")
        #expect(array.batch.string(.visitorID, 1) == "v")
        let empty = try decode(#"{"events":[]}"#)
        #expect(empty.batch.count == 0)
        #expect(try decode("[]").batch.count == 0)
    }

    @Test("received_at is always the server's clock")
    func receivedAtIgnoresClient() throws {
        let r = try decodeEvent(#"{"event_type":"e","received_at":12345}"#)
        #expect(r.batch.int(.receivedAt) == serverTime)
    }

    @Test("many events keep their values in order")
    func manyEvents() throws {
        let events = (0..<1500).map { #"{"event_type":"t\#($0)","page_url":"https://a.com/\#($0)","properties":{"post_id":\#($0)}}"# }
        let r = try decode("{\"events\":[" + events.joined(separator: ",") + "]}")
        #expect(r.batch.count == 1500)
        for i in [0, 1, 777, 1499] {
            #expect(r.batch.string(.eventType, i) == "t\(i)")
            #expect(r.batch.string(.pagePath, i) == "/\(i)")
            #expect(r.batch.int(.propPostID, i) == Int64(i))
        }
    }
}
