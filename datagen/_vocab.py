"""Small vocabularies for the synthetic demo data (Latin script only)."""

from __future__ import annotations

FIRST_NAMES = ["James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "William", "Elizabeth", "David", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Charles", "Karen", "Christopher", "Nancy", "Daniel", "Lisa", "Matthew", "Betty", "Anthony", "Margaret", "Mark", "Sandra", "Donald", "Ashley", "Steven", "Kimberly", "Paul", "Emily", "Andrew", "Donna", "Joshua", "Michelle", "Kenneth", "Carol", "Kevin", "Amanda", "Brian", "Melissa", "George", "Deborah", "Timothy", "Stephanie", "Ronald", "Rebecca", "Edward", "Sharon", "Jason", "Laura", "Jeffrey", "Cynthia", "Ryan", "Kathleen", "Jacob", "Amy", "Gary", "Angela", "Nicholas", "Shirley", "Eric", "Anna", "Jonathan", "Brenda", "Stephen", "Pamela", "Larry", "Emma", "Justin", "Nicole", "Scott", "Helen", "Brandon", "Samantha", "Benjamin", "Katherine", "Samuel", "Christine", "Gregory", "Debra", "Alexander", "Rachel", "Frank", "Carolyn", "Patrick", "Janet", "Raymond", "Catherine", "Jack", "Maria", "Dennis", "Heather", "Jerry", "Diane", "Tyler", "Ruth", "Aaron", "Julie", "José", "Olivia", "Adam", "Joyce", "Nathan", "Virginia", "Henry", "Victoria", "Douglas", "Kelly", "Zachary", "Lauren", "Peter", "Christina", "Kyle", "Joan", "Ethan", "Evelyn", "Walter", "Judith", "Noah", "Megan", "Jeremy", "Andrea", "Christian", "Cheryl", "Keith", "Hannah", "Roger", "Jacqueline", "Terry", "Martha", "Gerald", "Gloria", "Harold", "Teresa", "Sean", "Ann", "Austin", "Sara", "Carl", "Madison", "Arthur", "Frances", "Lawrence", "Kathryn", "Dylan", "Janice", "Jesse", "Jean", "Jordan", "Abigail", "Bryan", "Alice", "Billy", "Julia", "Joe", "Judy", "Bruce", "Sophia", "Gabriel", "Grace", "Logan", "Denise", "Albert", "Amber", "Willie", "Doris", "Alan", "Marilyn", "Juan", "Danielle", "Wayne", "Beverly", "Elijah", "Isabella", "Randy", "Theresa", "Roy", "Diana", "Vincent", "Natalie", "Ralph", "Brittany", "Eugene", "Charlotte", "Russell", "Marie", "Bobby", "Kayla", "Mason", "Alexis", "Philip", "Lori", "Louis", "Chloé", "Renée", "Zoë", "Noémie", "Hélène", "André", "Jürgen", "Søren", "Björn", "Zoé", "Inès", "Léa", "Mónica", "Raúl", "Sebastián", "Dolores", "Ángel", "Lucía", "François", "Amélie", "Jérôme", "Mei", "Wei", "Lian", "Jun", "Hui", "Ming", "Xin", "Yan", "Lei", "Ying", "Hao", "Jing", "Tao", "Fang", "Yu", "Lin", "Chen", "Kai"]

LAST_NAMES = ["Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson", "Baker", "Hall", "Rivera", "Campbell", "Mitchell", "Carter", "Roberts", "Gomez", "Phillips", "Evans", "Turner", "Diaz", "Parker", "Cruz", "Edwards", "Collins", "Reyes", "Stewart", "Morris", "Morales", "Murphy", "Cook", "Rogers", "Gutierrez", "Ortiz", "Morgan", "Cooper", "Peterson", "Bailey", "Reed", "Kelly", "Howard", "Ramos", "Kim", "Cox", "Ward", "Richardson", "Watson", "Brooks", "Chavez", "Wood", "James", "Bennett", "Gray", "Mendoza", "Ruiz", "Hughes", "Price", "Alvarez", "Castillo", "Sanders", "Patel", "Myers", "Long", "Ross", "Foster", "Jimenez", "Powell", "Jenkins", "Perry", "Russell", "Sullivan", "Bell", "Coleman", "Butler", "Henderson", "Barnes", "Gonzales", "Fisher", "Vasquez", "Simmons", "Romero", "Jordan", "Patterson", "Alexander", "Hamilton", "Graham", "Reynolds", "Griffin", "Wallace", "Moreno", "West", "Cole", "Hayes", "Bryant", "Herrera", "Gibson", "Ellis", "Tran", "Medina", "Aguilar", "Stevens", "Murray", "Ford", "Castro", "Marshall", "Owens", "Harrison", "Fernandez", "McDonald", "Woods", "Washington", "Kennedy", "Wells", "Vargas", "Henry", "Chen", "Freeman", "Webb", "Tucker", "Guzman", "Burns", "Crawford", "Olson", "Simpson", "Porter", "Hunter", "Gordon", "Mendez", "Silva", "Shaw", "Snyder", "Mason", "Dixon", "Muñoz", "Hunt", "Hicks", "Holmes", "Palmer", "Wagner", "Black", "Robertson", "Boyd", "Rose", "Stone", "Salazar", "Fox", "Warren", "Mills", "Meyer", "Rice", "Schmidt", "Müller", "Schröder", "Núñez", "Peña", "Østergaard", "Lefèvre", "Dupré", "Gómez", "Pérez", "Sánchez", "Wang", "Li", "Zhang", "Liu", "Yang", "Huang", "Zhao", "Wu", "Zhou", "Xu", "Sun", "Ma", "Zhu", "Hu", "Guo", "Lin", "Tan", "Ong", "Lim", "Goh", "Chua", "Koh"]

# city, region, population weight, postcode prefix (3 digits), landline area code (2 digits)
CITIES = [
    ("Shanghai", "East", 24, "200", "21"), ("Beijing", "North", 21, "100", "10"),
    ("Guangzhou", "South", 15, "510", "20"), ("Shenzhen", "South", 14, "518", "75"),
    ("Chengdu", "Southwest", 12, "610", "28"), ("Chongqing", "Southwest", 11, "400", "23"),
    ("Hangzhou", "East", 10, "310", "57"), ("Wuhan", "Central", 10, "430", "27"),
    ("Xi'an", "Northwest", 9, "710", "29"), ("Nanjing", "East", 9, "210", "25"),
    ("Tianjin", "North", 9, "300", "22"), ("Suzhou", "East", 8, "215", "51"),
    ("Zhengzhou", "Central", 8, "450", "37"), ("Changsha", "Central", 7, "410", "73"),
    ("Dongguan", "South", 7, "523", "76"), ("Shenyang", "Northeast", 7, "110", "24"),
    ("Qingdao", "East", 7, "266", "53"), ("Hefei", "East", 6, "230", "55"),
    ("Foshan", "South", 6, "528", "75"), ("Ningbo", "East", 6, "315", "57"),
    ("Kunming", "Southwest", 6, "650", "87"), ("Harbin", "Northeast", 6, "150", "45"),
    ("Jinan", "East", 5, "250", "53"), ("Xiamen", "East", 5, "361", "59"),
    ("Fuzhou", "East", 5, "350", "59"), ("Dalian", "Northeast", 5, "116", "41"),
    ("Changchun", "Northeast", 5, "130", "43"), ("Nanning", "South", 4, "530", "77"),
    ("Shijiazhuang", "North", 4, "050", "31"), ("Taiyuan", "North", 4, "030", "35"),
    ("Guiyang", "Southwest", 4, "550", "85"), ("Nanchang", "Central", 4, "330", "79"),
    ("Urumqi", "Northwest", 3, "830", "99"), ("Lanzhou", "Northwest", 3, "730", "93"),
    ("Haikou", "South", 2, "570", "89"), ("Hohhot", "North", 2, "010", "47"),
    ("Yinchuan", "Northwest", 2, "750", "95"), ("Xining", "Northwest", 1, "810", "97"),
]

STREETS = ["Nanjing", "Huaihai", "Zhongshan", "Renmin", "Jiefang", "Heping", "Xinhua", "Jianshe", "Changjiang", "Binhe", "Dongfeng", "Wenhua", "Yingbin", "Chaoyang", "Guangming", "Shengli", "Xingfu", "Minzhu", "Century", "Harbour", "Garden", "Lakeside", "Riverside", "Orchid", "Maple", "Cedar", "Pine", "Willow", "Spring", "Sunrise"]
STREET_SUFFIX = ["Road", "Street", "Avenue", "Lane", "Boulevard"]

# category, base price (CNY), margin low, margin high, product nouns
CATEGORIES = [
    ("Apparel", 129, 0.35, 0.60, ["T-Shirt", "Hoodie", "Jeans", "Dress", "Jacket", "Sweater"]),
    ("Shoes", 299, 0.30, 0.55, ["Running Shoe", "Sneaker", "Boot", "Sandal", "Loafer"]),
    ("Bags & Accessories", 199, 0.40, 0.65, ["Tote", "Backpack", "Wallet", "Belt", "Scarf"]),
    ("Beauty", 119, 0.45, 0.70, ["Lipstick", "Foundation", "Mascara", "Eyeshadow Palette"]),
    ("Skincare", 159, 0.45, 0.70, ["Serum", "Moisturiser", "Cleanser", "Sunscreen", "Toner"]),
    ("Fragrance", 399, 0.40, 0.65, ["Eau de Parfum", "Eau de Toilette", "Body Mist"]),
    ("Baby & Kids", 89, 0.25, 0.45, ["Diapers", "Formula", "Stroller", "Baby Bottle", "Onesie"]),
    ("Toys", 99, 0.30, 0.50, ["Building Set", "Plush Toy", "Puzzle", "RC Car", "Doll"]),
    ("Home & Kitchen", 149, 0.30, 0.50, ["Pan", "Knife Set", "Kettle", "Storage Box", "Mug"]),
    ("Bedding", 259, 0.35, 0.55, ["Duvet", "Pillow", "Sheet Set", "Blanket"]),
    ("Electronics", 899, 0.08, 0.20, ["Earbuds", "Speaker", "Smartwatch", "Power Bank", "Tablet"]),
    ("Mobile Accessories", 69, 0.40, 0.65, ["Phone Case", "Charger", "Cable", "Screen Protector"]),
    ("Sports & Outdoors", 199, 0.30, 0.50, ["Yoga Mat", "Tent", "Water Bottle", "Dumbbell Set"]),
    ("Health", 129, 0.35, 0.55, ["Vitamin C", "Protein Powder", "Fish Oil", "Probiotic"]),
    ("Snacks", 39, 0.20, 0.35, ["Nut Mix", "Chocolate Box", "Dried Mango", "Cookies"]),
    ("Beverages", 49, 0.20, 0.35, ["Green Tea", "Coffee Beans", "Sparkling Water", "Oolong Tea"]),
    ("Pet Supplies", 99, 0.25, 0.45, ["Dog Food", "Cat Litter", "Pet Bed", "Cat Tree"]),
    ("Books & Stationery", 49, 0.20, 0.40, ["Notebook", "Pen Set", "Novel", "Planner"]),
    ("Jewelry", 599, 0.45, 0.70, ["Necklace", "Earrings", "Bracelet", "Ring"]),
    ("Watches", 1299, 0.30, 0.50, ["Automatic Watch", "Quartz Watch", "Sport Watch"]),
]

BRANDS = ["Aurora", "Bellwood", "Cobalt", "Driftwood", "Ember", "Fable", "Glimmer", "Harbor", "Ivory", "Juniper", "Kestrel", "Lumen", "Meridian", "Northwind", "Opal", "Pinecrest", "Quill", "Russet", "Solace", "Tidewater", "Umber", "Vesper", "Willowby", "Xenia", "Yarrow", "Zephyr", "Alder", "Brio", "Cascade", "Dune", "Elara", "Fjord", "Gala", "Halcyon", "Iris", "Jade", "Koru", "Lark", "Mosaic", "Nimbus", "Onyx", "Pebble", "Quartz", "Rowan", "Sable", "Terra", "Umbra", "Velvet", "Wren", "Yuzu"]

MALLS = ["Plaza", "Center", "Mall", "Square", "Galleria", "Outlet", "Mart", "Walk"]

COUPONS = ["WELCOME10", "SAVE20", "VIP15", "DOUBLE11", "618SALE", "BDAY25", "FREESHIP", "WINBACK30"]

ONLINE_CHANNELS = ["web", "app", "mini_program", "marketplace"]
EVENT_TYPES = ["page_view", "product_view", "cart_add", "search", "app_open"]
EMAIL_DOMAINS = [("gmail.com", 0.28), ("qq.com", 0.20), ("163.com", 0.15), ("outlook.com", 0.10),
                 ("yahoo.com", 0.08), ("icloud.com", 0.07), ("hotmail.com", 0.06), ("126.com", 0.06)]
MOBILE_PREFIXES = [130, 131, 132, 133, 135, 136, 137, 138, 139, 150, 151, 152, 155, 156, 157,
                   158, 159, 166, 177, 180, 181, 182, 183, 185, 186, 187, 188, 189, 198, 199]
