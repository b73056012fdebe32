// Static vocabularies the catalogue is built from. Names are invented (sites) or public,
// generic identifiers (countries, referrer domains, device model names, user-agent formats).

enum CatalogData {
    // MARK: Sites

    /// site_id, domain, display name, Russian-language audience.
    struct SiteSeed {
        let id: String
        let domain: String
        let name: String
        let ru: Bool
    }

    static let sites: [SiteSeed] = [
        SiteSeed(id: "techpulse", domain: "techpulse.com", name: "TechPulse", ru: false),
        SiteSeed(id: "click-or-die", domain: "click-or-die.ru", name: "Click or Die", ru: true),
        SiteSeed(id: "gadgetzone", domain: "gadgetzone.net", name: "GadgetZone", ru: false),
        SiteSeed(id: "mobiltelefon", domain: "mobiltelefon.ru", name: "Мобильный телефон", ru: true),
        SiteSeed(id: "droidwatch", domain: "droidwatch.io", name: "DroidWatch", ru: false),
        SiteSeed(id: "hitechnews", domain: "hitechnews.ru", name: "Хайтек Новости", ru: true),
        SiteSeed(id: "smartphoneguide", domain: "smartphoneguide.com", name: "Smartphone Guide", ru: false),
        SiteSeed(id: "tehnomir", domain: "tehnomir.ru", name: "Техномир", ru: true),
        SiteSeed(id: "reviewlab", domain: "reviewlab.co.uk", name: "ReviewLab", ru: false),
        SiteSeed(id: "gearbench", domain: "gearbench.com", name: "GearBench", ru: false),
        SiteSeed(id: "mobile-insider", domain: "mobile-insider.ru", name: "Mobile Insider", ru: true),
        SiteSeed(id: "pocketbyte", domain: "pocketbyte.io", name: "PocketByte", ru: false),
        SiteSeed(id: "specsbase", domain: "specsbase.com", name: "SpecsBase", ru: false),
        SiteSeed(id: "androidfan", domain: "androidfan.ru", name: "AndroidFan", ru: true),
        SiteSeed(id: "unboxly", domain: "unboxly.com", name: "Unboxly", ru: false),
        SiteSeed(id: "chiptalk", domain: "chiptalk.net", name: "ChipTalk", ru: false),
        SiteSeed(id: "gadgetmania", domain: "gadgetmania.ru", name: "Гаджетомания", ru: true),
        SiteSeed(id: "screenfirst", domain: "screenfirst.net", name: "ScreenFirst", ru: false),
        SiteSeed(id: "wearablehub", domain: "wearablehub.com", name: "Wearable Hub", ru: false),
        SiteSeed(id: "tsifrovik", domain: "tsifrovik.ru", name: "Цифровик", ru: true),
    ]

    /// For more sites than the curated list: prefix × suffix combinations.
    static let sitePrefixes: [String] = [
        "tech", "gadget", "phone", "mobile", "smart", "droid", "pixel", "chip", "byte", "screen",
        "device", "cell", "tablet", "watch", "audio", "geek", "nerd", "circuit", "signal", "volt",
    ]
    static let siteSuffixes: [String] = [
        "hub", "lab", "zone", "base", "wire", "talk", "point", "world", "daily", "insider",
        "guide", "review", "blog", "news", "corner", "planet", "digest", "scope", "pulse", "spot",
    ]

    // MARK: Devices

    /// Device families: brand, model names, and the year of the first model (later models
    /// in the list are newer).
    struct Family {
        let brand: String
        let models: [String]
        let firstYear: Int
        let perYear: Int
        let kind: String  // category slug
    }

    static func iphoneModels() -> [String] {
        var out: [String] = []
        for g in 11...17 {
            out.append("iPhone \(g)")
            if g == 12 || g == 13 { out.append("iPhone \(g) mini") }
            if g >= 14 && g <= 16 { out.append("iPhone \(g) Plus") }
            out.append("iPhone \(g) Pro")
            out.append("iPhone \(g) Pro Max")
            if g == 16 { out.append("iPhone 16e") }
            if g == 17 { out.append("iPhone Air") }
        }
        return out
    }

    static func galaxySModels() -> [String] {
        var out: [String] = []
        for g in 21...26 {
            for v in ["", "+", " Ultra", " FE"] { out.append("Galaxy S\(g)\(v)") }
        }
        return out
    }

    static let families: [Family] = [
        Family(brand: "Apple", models: iphoneModels(), firstYear: 2019, perYear: 5, kind: "phones"),
        Family(brand: "Samsung", models: galaxySModels(), firstYear: 2021, perYear: 4, kind: "phones"),
        Family(
            brand: "Samsung",
            models: [
                "Galaxy A05", "Galaxy A15", "Galaxy A25", "Galaxy A35", "Galaxy A55", "Galaxy A16", "Galaxy A26",
                "Galaxy A36", "Galaxy A56", "Galaxy A17", "Galaxy A57",
            ],
            firstYear: 2023, perYear: 5, kind: "phones"),
        Family(
            brand: "Samsung",
            models: [
                "Galaxy Z Fold3", "Galaxy Z Flip3", "Galaxy Z Fold4", "Galaxy Z Flip4", "Galaxy Z Fold5",
                "Galaxy Z Flip5", "Galaxy Z Fold6", "Galaxy Z Flip6", "Galaxy Z Fold7", "Galaxy Z Flip7",
            ],
            firstYear: 2021, perYear: 2, kind: "phones"),
        Family(
            brand: "Google",
            models: [
                "Pixel 6", "Pixel 6 Pro", "Pixel 6a", "Pixel 7", "Pixel 7 Pro", "Pixel 7a", "Pixel 8", "Pixel 8 Pro",
                "Pixel 8a", "Pixel 9", "Pixel 9 Pro", "Pixel 9 Pro XL", "Pixel 9 Pro Fold", "Pixel 9a", "Pixel 10",
                "Pixel 10 Pro", "Pixel 10 Pro XL", "Pixel 10a",
            ],
            firstYear: 2021, perYear: 3, kind: "phones"),
        Family(
            brand: "Xiaomi",
            models: [
                "Xiaomi 12", "Xiaomi 12 Pro", "Xiaomi 12T", "Xiaomi 12T Pro", "Xiaomi 13", "Xiaomi 13 Pro",
                "Xiaomi 13 Ultra", "Xiaomi 13T", "Xiaomi 13T Pro", "Xiaomi 14", "Xiaomi 14 Ultra", "Xiaomi 14T",
                "Xiaomi 14T Pro", "Xiaomi 15", "Xiaomi 15 Ultra", "Xiaomi 15T", "Xiaomi 15T Pro", "Xiaomi 16",
            ],
            firstYear: 2022, perYear: 4, kind: "phones"),
        Family(
            brand: "Xiaomi",
            models: [
                "Redmi Note 11", "Redmi Note 11 Pro", "Redmi Note 12", "Redmi Note 12 Pro", "Redmi Note 12 Pro+",
                "Redmi Note 13", "Redmi Note 13 Pro", "Redmi Note 13 Pro+", "Redmi Note 14", "Redmi Note 14 Pro",
                "Redmi Note 14 Pro+", "Redmi 13C", "Redmi 14C", "Redmi 15C", "Redmi Note 15 Pro",
            ],
            firstYear: 2022, perYear: 4, kind: "phones"),
        Family(
            brand: "POCO",
            models: [
                "POCO F4", "POCO X5 Pro", "POCO F5", "POCO F5 Pro", "POCO X6 Pro", "POCO F6", "POCO F6 Pro",
                "POCO M6 Pro", "POCO X7 Pro", "POCO F7", "POCO F7 Pro", "POCO F8 Pro",
            ],
            firstYear: 2022, perYear: 3, kind: "phones"),
        Family(
            brand: "OnePlus",
            models: [
                "OnePlus 10 Pro", "OnePlus Nord 3", "OnePlus 11", "OnePlus 12", "OnePlus 12R", "OnePlus Nord 4",
                "OnePlus Nord CE4", "OnePlus 13", "OnePlus 13R", "OnePlus 15",
            ],
            firstYear: 2022, perYear: 3, kind: "phones"),
        Family(
            brand: "Honor",
            models: [
                "Honor 90", "Honor X8b", "Honor Magic6 Pro", "Honor 200", "Honor 200 Pro", "Honor X9b",
                "Honor Magic7 Pro", "Honor 400", "Honor 400 Pro", "Honor Magic V5",
            ],
            firstYear: 2023, perYear: 3, kind: "phones"),
        Family(
            brand: "Huawei",
            models: [
                "Huawei P60 Pro", "Huawei Mate 60 Pro", "Huawei nova 12", "Huawei Pura 70", "Huawei Pura 70 Ultra",
                "Huawei nova 13", "Huawei Mate 70 Pro", "Huawei Pura 80 Ultra",
            ],
            firstYear: 2023, perYear: 3, kind: "phones"),
        Family(
            brand: "realme",
            models: [
                "realme 11 Pro", "realme C67", "realme 12 Pro+", "realme GT 6", "realme Note 60", "realme GT 7 Pro",
                "realme 14 Pro+", "realme GT 8 Pro",
            ],
            firstYear: 2023, perYear: 3, kind: "phones"),
        Family(
            brand: "Nothing",
            models: [
                "Nothing Phone (1)", "Nothing Phone (2)", "Nothing Phone (2a)", "Nothing Phone (3a)",
                "Nothing Phone (3)",
            ],
            firstYear: 2022, perYear: 1, kind: "phones"),
        Family(
            brand: "Motorola",
            models: [
                "Motorola Edge 40", "moto g84", "Motorola Edge 50 Pro", "Motorola Edge 50 Ultra", "moto g85",
                "Motorola razr 50", "Motorola razr 50 ultra", "Motorola Edge 60 Pro", "Motorola razr 60 ultra",
            ],
            firstYear: 2023, perYear: 3, kind: "phones"),
        Family(
            brand: "Sony",
            models: [
                "Sony Xperia 1 V", "Sony Xperia 5 V", "Sony Xperia 10 VI", "Sony Xperia 1 VI", "Sony Xperia 1 VII",
            ],
            firstYear: 2023, perYear: 2, kind: "phones"),
        Family(
            brand: "vivo",
            models: ["vivo X100 Pro", "vivo V30", "vivo X200 Pro", "vivo V40", "vivo X300 Pro"],
            firstYear: 2023, perYear: 2, kind: "phones"),
        Family(
            brand: "OPPO",
            models: [
                "OPPO Find X7 Ultra", "OPPO Reno12 Pro", "OPPO Find X8 Pro", "OPPO Reno13 Pro", "OPPO Find X9 Pro",
            ],
            firstYear: 2024, perYear: 2, kind: "phones"),
        Family(
            brand: "TECNO",
            models: ["TECNO Spark 20 Pro", "TECNO Camon 30", "TECNO Pova 6 Pro", "TECNO Camon 40 Pro"],
            firstYear: 2024, perYear: 2, kind: "phones"),
        Family(
            brand: "Infinix",
            models: ["Infinix Note 40 Pro", "Infinix Hot 50", "Infinix Note 50 Pro"],
            firstYear: 2024, perYear: 2, kind: "phones"),
        Family(
            brand: "Apple",
            models: [
                "iPad (10th gen)", "iPad Air M2", "iPad Pro M4", "iPad mini (A17 Pro)", "iPad (A16)", "iPad Air M3",
                "iPad Pro M5",
            ],
            firstYear: 2022, perYear: 2, kind: "tablets"),
        Family(
            brand: "Samsung",
            models: [
                "Galaxy Tab S9", "Galaxy Tab S9 FE", "Galaxy Tab S10 Ultra", "Galaxy Tab S10 FE", "Galaxy Tab S11",
            ],
            firstYear: 2023, perYear: 2, kind: "tablets"),
        Family(
            brand: "Xiaomi",
            models: ["Xiaomi Pad 6", "Redmi Pad SE", "Xiaomi Pad 7", "Xiaomi Pad 7 Pro", "Redmi Pad 2"],
            firstYear: 2023, perYear: 2, kind: "tablets"),
        Family(
            brand: "Apple",
            models: [
                "Apple Watch Series 9", "Apple Watch Ultra 2", "Apple Watch Series 10", "Apple Watch SE 3",
                "Apple Watch Series 11", "Apple Watch Ultra 3",
            ],
            firstYear: 2023, perYear: 2, kind: "smartwatches"),
        Family(
            brand: "Samsung",
            models: [
                "Galaxy Watch6", "Galaxy Watch6 Classic", "Galaxy Watch7", "Galaxy Watch Ultra", "Galaxy Watch8",
                "Galaxy Watch8 Classic",
            ],
            firstYear: 2023, perYear: 2, kind: "smartwatches"),
        Family(
            brand: "Apple",
            models: [
                "MacBook Air M2", "MacBook Air M3", "MacBook Pro 14 M3", "MacBook Air M4", "MacBook Pro 14 M4",
                "MacBook Pro 14 M5",
            ],
            firstYear: 2022, perYear: 2, kind: "laptops"),
        Family(
            brand: "Apple",
            models: ["AirPods Pro 2", "AirPods 4", "AirPods Max (USB-C)", "AirPods Pro 3"],
            firstYear: 2022, perYear: 1, kind: "headphones"),
        Family(
            brand: "Sony",
            models: ["Sony WH-1000XM5", "Sony WF-1000XM5", "Sony WH-1000XM6"],
            firstYear: 2022, perYear: 1, kind: "headphones"),
        Family(
            brand: "Samsung",
            models: ["Galaxy Buds2 Pro", "Galaxy Buds3 Pro", "Galaxy Buds FE"],
            firstYear: 2022, perYear: 1, kind: "headphones"),
    ]

    // MARK: Pages

    static let categories: [String] = [
        "phones", "tablets", "laptops", "smartwatches", "headphones", "tv", "cameras", "gaming", "apps", "deals",
        "reviews", "news", "accessories", "smart-home",
    ]
    static let categoryNamesEN: [String] = [
        "Phones", "Tablets", "Laptops", "Smartwatches", "Headphones", "TV", "Cameras", "Gaming", "Apps", "Deals",
        "Reviews", "News", "Accessories", "Smart home",
    ]
    static let categoryNamesRU: [String] = [
        "Смартфоны", "Планшеты", "Ноутбуки", "Умные часы", "Наушники", "Телевизоры", "Камеры", "Игры", "Приложения",
        "Скидки", "Обзоры", "Новости", "Аксессуары", "Умный дом",
    ]
    static let tags: [String] = [
        "android", "ios", "5g", "camera", "battery", "foldables", "ai", "wearables", "chargers", "leaks", "rumors",
        "apple", "samsung", "xiaomi", "google", "oneplus", "honor", "huawei", "nothing", "budget", "flagship",
        "gaming-phones", "esim", "usb-c", "wireless-charging", "updates", "security", "comparison", "how-to", "tips",
    ]
    static let otherPaths: [String] = ["/about", "/contacts", "/search", "/deals", "/authors", "/privacy-policy"]

    static let verdictsEN: [String] = [
        "the best phone of the year?", "a month later", "almost perfect", "great screen, weak battery",
        "more of the same", "the camera king", "worth the upgrade", "not for everyone", "flagship killer again",
        "small but mighty",
    ]
    static let verdictsRU: [String] = [
        "лучший смартфон года?", "спустя месяц", "почти идеал", "отличный экран, слабая батарея", "больше того же",
        "король камер", "стоит ли обновляться", "не для всех", "снова убийца флагманов", "маленький, но мощный",
    ]
    static let actionsEN: [String] = [
        "take-screenshots", "save-battery", "transfer-data", "reset", "enable-esim", "update-software",
        "record-calls", "use-dual-sim",
    ]
    static let actionsRU: [String] = [
        "сделать скриншот", "сэкономить заряд", "перенести данные", "сбросить настройки", "включить eSIM",
        "обновить прошивку", "записывать звонки", "использовать две SIM",
    ]
    static let phrasesEN: [String] = ["all-day", "two days", "not great", "impressive", "record-breaking"]
    static let phrasesRU: [String] = ["весь день", "два дня", "так себе", "впечатляет", "рекорд"]

    // MARK: Referrers

    /// Real referrer domains, most popular first; a synthetic tail fills the list to `referrerCount`.
    static let referrerHead: [String] = [
        "google.com", "yandex.ru", "t.me", "vk.com", "youtube.com", "dzen.ru", "bing.com", "duckduckgo.com",
        "news.google.com", "facebook.com", "x.com", "reddit.com", "go.mail.ru", "ok.ru", "instagram.com",
        "google.ru", "yandex.kz", "yandex.by", "google.de", "google.co.uk", "linkedin.com", "news.ycombinator.com",
        "flipboard.com", "pinterest.com", "android-app.com", "ya.ru", "google.com.ua", "google.kz", "google.fr",
        "google.it", "google.es", "google.com.br", "google.co.in", "google.pl", "google.nl", "google.com.tr",
        "google.ca", "google.com.au", "google.co.jp", "yandex.com", "yandex.com.tr", "search.yahoo.com", "ecosia.org",
        "baidu.com", "naver.com", "msn.com", "news.yandex.ru", "pikabu.ru", "habr.com", "4pda.to", "ixbt.com",
        "vc.ru", "mail.ru", "rambler.ru", "livejournal.com", "telegra.ph", "whatsapp.com", "discord.com",
        "tiktok.com", "threads.net", "mastodon.social", "bsky.app", "quora.com", "medium.com", "slashdot.org",
        "theverge.com", "engadget.com", "gsmarena.com", "phonearena.com", "androidauthority.com", "9to5mac.com",
        "9to5google.com", "macrumors.com", "xda-developers.com", "wired.com", "arstechnica.com", "cnet.com",
        "techradar.com", "tomsguide.com", "zdnet.com", "wikipedia.org", "ru.wikipedia.org", "en.wikipedia.org",
        "market.yandex.ru", "ozon.ru", "wildberries.ru", "avito.ru", "amazon.com", "ebay.com", "aliexpress.com",
        "aliexpress.ru", "dns-shop.ru", "mvideo.ru", "citilink.ru", "e-katalog.ru", "price.ru", "otzovik.com",
        "irecommend.ru", "trustpilot.com", "slickdeals.net", "hotukdeals.com", "mydealz.de", "outlook.live.com",
        "mail.google.com", "e.mail.ru", "web.telegram.org", "web.whatsapp.com", "lm.facebook.com", "l.instagram.com",
        "m.facebook.com", "m.vk.com", "away.vk.com", "out.reddit.com", "feedly.com", "inoreader.com",
    ]
    static let referrerCount = 300
    static let tailWords: [String] = [
        "mobile", "phone", "gadget", "tech", "review", "geek", "droid", "apple", "smart", "digital", "pixel", "byte",
        "chip", "screen", "deal", "price", "forum", "club", "fan", "info",
    ]
    static let tailPatterns: [String] = [
        "**.ru", "forum.**.com", "*-*.net", "**.blogspot.com", "**.livejournal.com", "m.**.ru", "**.org",
        "news.**.com",
    ]

    // MARK: Geography

    /// ISO 3166-1 alpha-2 codes in rough order of traffic for a Russian-language audience.
    static let countriesRU: [String] = [
        "RU", "KZ", "BY", "UA", "UZ", "DE", "US", "AM", "GE", "KG", "IL", "TR", "AZ", "MD", "FI", "LV", "EE", "LT",
        "PL", "GB", "NL", "FR", "CZ", "RS", "TH", "CY", "ES", "IT", "AE", "TJ", "MN", "CN", "CA", "SE", "AT", "CH",
        "BG", "GR", "PT", "VN", "ID", "IN", "JP", "KR", "ME", "BE", "DK", "NO", "IE", "HU", "SK", "RO", "HR", "SI",
        "AU", "BR", "AR", "MX", "EG", "TM",
    ]
    /// The same for an English-language audience.
    static let countriesEN: [String] = [
        "US", "IN", "GB", "DE", "CA", "BR", "FR", "AU", "PH", "ID", "NG", "PK", "ES", "IT", "NL", "MX", "PL", "TR",
        "JP", "RU", "SE", "BD", "ZA", "KE", "EG", "VN", "MY", "SG", "AE", "SA", "IE", "BE", "CH", "AT", "NO", "DK",
        "FI", "PT", "GR", "CZ", "RO", "HU", "IL", "AR", "CO", "CL", "PE", "NZ", "KR", "TW", "HK", "TH", "UA", "KZ",
        "LK", "NP", "GH", "MA", "DZ", "TN", "UY", "EC", "VE", "BO", "PY", "CR", "PA", "DO", "GT", "SV", "HN", "JM",
        "TT", "IS", "LU", "MT", "EE", "LV", "LT", "SI", "SK", "HR", "RS", "BA", "AL", "MK", "BG", "CY", "GE", "AM",
        "AZ", "BY", "MD", "UZ", "KG", "MN", "KH", "MM", "LA", "QA", "KW", "BH", "OM", "JO", "LB", "IQ", "ET", "TZ",
        "UG", "RW", "CM", "CI", "SN", "ZM", "ZW", "MU",
    ]

    /// ISO 3166-2 subdivision codes (the part after the dash) for the main countries.
    static let regions: [String: [String]] = [
        "RU": [
            "MOW", "SPE", "MOS", "SVE", "KDA", "TA", "NVS", "NIZ", "SAM", "BA", "ROS", "CHE", "KYA", "VOR", "PER",
            "VGG", "IRK", "OMS", "TYU", "LEN",
        ],
        "US": [
            "CA", "TX", "NY", "FL", "IL", "PA", "OH", "GA", "NC", "MI", "NJ", "VA", "WA", "AZ", "MA", "TN", "IN",
            "MO", "MD", "WI", "CO", "MN", "OR",
        ],
        "GB": ["ENG", "SCT", "WLS", "NIR"],
        "DE": ["BY", "NW", "BW", "NI", "HE", "BE", "SN", "RP", "HH", "SH"],
        "IN": ["MH", "KA", "DL", "TN", "UP", "TG", "WB", "GJ", "RJ", "KL"],
        "UA": ["30", "46", "51", "63", "12", "32", "53"],
        "KZ": ["ALA", "AST", "KAR", "SHY", "AKT", "PAV"],
        "BY": ["HM", "MI", "BR", "HO", "HR", "MA", "VI"],
        "CA": ["ON", "QC", "BC", "AB", "MB", "NS"],
        "FR": ["IDF", "ARA", "NAQ", "OCC", "PAC", "HDF"],
        "BR": ["SP", "RJ", "MG", "RS", "PR", "BA"],
        "AU": ["NSW", "VIC", "QLD", "WA", "SA"],
        "UZ": ["TK", "SA", "FA", "AN"],
        "PL": ["14", "12", "30", "02"],
        "TR": ["34", "06", "35", "07"],
        "ES": ["MD", "CT", "AN", "VC"],
        "IT": ["25", "62", "72", "21"],
    ]

    // MARK: Campaigns

    struct CampaignSource {
        let source: String
        let medium: String
        let referrer: String
    }

    static let campaignSourcesRU: [CampaignSource] = [
        CampaignSource(source: "yandex", medium: "cpc", referrer: "yandex.ru"),
        CampaignSource(source: "telegram", medium: "social", referrer: "t.me"),
        CampaignSource(source: "vk", medium: "social", referrer: "vk.com"),
        CampaignSource(source: "newsletter", medium: "email", referrer: ""),
        CampaignSource(source: "google", medium: "cpc", referrer: "google.com"),
        CampaignSource(source: "dzen", medium: "social", referrer: "dzen.ru"),
        CampaignSource(source: "push", medium: "push", referrer: ""),
        CampaignSource(source: "partner", medium: "referral", referrer: "4pda.to"),
    ]
    static let campaignSourcesEN: [CampaignSource] = [
        CampaignSource(source: "google", medium: "cpc", referrer: "google.com"),
        CampaignSource(source: "newsletter", medium: "email", referrer: ""),
        CampaignSource(source: "facebook", medium: "paid_social", referrer: "facebook.com"),
        CampaignSource(source: "reddit", medium: "social", referrer: "reddit.com"),
        CampaignSource(source: "youtube", medium: "video", referrer: "youtube.com"),
        CampaignSource(source: "x", medium: "social", referrer: "x.com"),
        CampaignSource(source: "push", medium: "push", referrer: ""),
        CampaignSource(source: "partner", medium: "referral", referrer: "slickdeals.net"),
    ]
    /// `#` stands for the year of the end of the span.
    static let campaignNames: [String] = [
        "black-friday-#", "cyber-monday-#", "back-to-school-#", "autumn-sale", "summer-deals",
        "holiday-gift-guide", "prime-day-#", "new-year-deals", "singles-day-1111", "flagship-week",
        "budget-phones-promo", "trade-in-offer", "app-install", "weekly-digest", "monthly-digest", "reader-survey",
    ]

    // MARK: Custom events

    static let shareNetworks: [String] = ["telegram", "whatsapp", "vk", "x", "facebook", "copy_link", "email"]
    static let newsletterForms: [String] = ["footer", "popup", "inline", "sidebar"]
    /// Extra search queries, including ones that need JSON escaping.
    static let searchExtras: [String] = [
        "обзор iphone 16", "лучший смартфон до 30000", "какой телефон купить", "сравнение камер",
        "\"pixel 9\" vs iphone", "c:\\drivers usb", "best phone\tunder 500", "📱 deals", "samsung s24 ultra цена",
        "наушники с шумоподавлением", "airpods pro 2 vs galaxy buds3 pro", "wireless charger 50w",
    ]
}
