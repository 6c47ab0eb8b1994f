"""Realistic values for the sample generator: places, names, documents, reasons."""

from __future__ import annotations

from typing import NamedTuple

from .codes import Canton


class Municipality(NamedTuple):
    """A Swiss municipality with its BFS number, one postcode and its language."""

    bfs: int
    name: str
    canton: Canton
    zip_code: int
    language: str


class Nation(NamedTuple):
    """A country of nationality (BFS and ISO codes) with typical names and towns."""

    bfs: int
    iso2: str
    name: str
    eu_efta: bool
    names: str
    towns: tuple[str, ...]


MUNICIPALITIES = (
    Municipality(261, "Zürich", "ZH", 8004, "de"),
    Municipality(230, "Winterthur", "ZH", 8400, "de"),
    Municipality(198, "Uster", "ZH", 8610, "de"),
    Municipality(243, "Dietikon", "ZH", 8953, "de"),
    Municipality(351, "Bern", "BE", 3011, "de"),
    Municipality(371, "Biel/Bienne", "BE", 2502, "de"),
    Municipality(942, "Thun", "BE", 3600, "de"),
    Municipality(1061, "Luzern", "LU", 6003, "de"),
    Municipality(1024, "Emmen", "LU", 6020, "de"),
    Municipality(1711, "Zug", "ZG", 6300, "de"),
    Municipality(2196, "Fribourg", "FR", 1700, "fr"),
    Municipality(2601, "Solothurn", "SO", 4500, "de"),
    Municipality(2701, "Basel", "BS", 4057, "de"),
    Municipality(2829, "Liestal", "BL", 4410, "de"),
    Municipality(2939, "Schaffhausen", "SH", 8200, "de"),
    Municipality(3001, "Herisau", "AR", 9100, "de"),
    Municipality(3203, "St. Gallen", "SG", 9000, "de"),
    Municipality(3901, "Chur", "GR", 7000, "de"),
    Municipality(4001, "Aarau", "AG", 5000, "de"),
    Municipality(4021, "Baden", "AG", 5400, "de"),
    Municipality(4566, "Frauenfeld", "TG", 8500, "de"),
    Municipality(5002, "Bellinzona", "TI", 6500, "it"),
    Municipality(5192, "Lugano", "TI", 6900, "it"),
    Municipality(5586, "Lausanne", "VD", 1004, "fr"),
    Municipality(5591, "Renens (VD)", "VD", 1020, "fr"),
    Municipality(5938, "Yverdon-les-Bains", "VD", 1400, "fr"),
    Municipality(6266, "Sion", "VS", 1950, "fr"),
    Municipality(6421, "La Chaux-de-Fonds", "NE", 2300, "fr"),
    Municipality(6458, "Neuchâtel", "NE", 2000, "fr"),
    Municipality(6621, "Genève", "GE", 1205, "fr"),
    Municipality(6643, "Vernier", "GE", 1214, "fr"),
    Municipality(6711, "Delémont", "JU", 2800, "fr"),
)

STREETS = {
    "de": ("Bahnhofstrasse", "Hauptstrasse", "Dorfstrasse", "Seestrasse", "Kirchweg",
           "Schulhausstrasse", "Bergstrasse", "Mühlegasse", "Gartenstrasse", "Rosenweg"),
    "fr": ("Rue de la Gare", "Avenue de France", "Chemin des Vignes", "Rue du Marché",
           "Route de Genève", "Avenue de Morges", "Rue des Écoles", "Chemin du Levant"),
    "it": ("Via Cantonale", "Via San Gottardo", "Via Nassa", "Viale Stazione",
           "Via ai Ronchi", "Via Motta"),
}  # fmt: skip

NATIONS = (
    Nation(8207, "DE", "Deutschland", True, "de", ("Berlin", "München", "Stuttgart")),
    Nation(8229, "AT", "Österreich", True, "de", ("Wien", "Bregenz", "Graz")),
    Nation(8212, "FR", "Frankreich", True, "fr", ("Lyon", "Annecy", "Besançon")),
    Nation(8218, "IT", "Italien", True, "it", ("Milano", "Como", "Napoli")),
    Nation(8231, "PT", "Portugal", True, "pt", ("Porto", "Braga", "Viseu")),
    Nation(8236, "ES", "Spanien", True, "es", ("Madrid", "Sevilla", "A Coruña")),
    Nation(8230, "PL", "Polen", True, "pl", ("Kraków", "Łódź", "Gdańsk")),
    Nation(8250, "HR", "Kroatien", True, "sh", ("Zagreb", "Split")),
    Nation(8256, "XK", "Kosovo", False, "sq", ("Prishtinë", "Prizren", "Gjakovë")),
    Nation(8201, "AL", "Albanien", False, "sq", ("Tiranë", "Durrës")),
    Nation(8255, "MK", "Nordmazedonien", False, "sq", ("Skopje", "Tetovo")),
    Nation(8248, "RS", "Serbien", False, "sh", ("Beograd", "Niš", "Novi Sad")),
    Nation(8252, "BA", "Bosnien und Herzegowina", False, "sh", ("Sarajevo", "Tuzla")),
    Nation(8239, "TR", "Türkei", False, "tr", ("İstanbul", "Ankara", "İzmir")),
    Nation(8265, "UA", "Ukraine", False, "uk", ("Kyjiw", "Charkiw", "Lwiw")),
    Nation(8501, "AF", "Afghanistan", False, "fa", ("Kabul", "Herat")),
    Nation(8362, "ER", "Eritrea", False, "ti", ("Asmara", "Keren")),
    Nation(8541, "SY", "Syrien", False, "ar", ("Aleppo", "Damaskus")),
    Nation(8523, "LB", "Libanon", False, "ar", ("Beirut", "Tripoli")),
    Nation(8506, "LK", "Sri Lanka", False, "ta", ("Jaffna", "Colombo")),
)
SWITZERLAND = Nation(8100, "CH", "Schweiz", True, "de", ())

#: Per name group: male first names, female first names, family names.
NAMES: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "de": (("Jürgen", "Lukas", "Maximilian", "Jörg"), ("Jana", "Lea", "Sophie", "Käthe"),
           ("Müller", "Schröder", "Weiß", "Hoffmann", "Köhler")),
    "fr": (("François", "Jérôme", "Théo", "Noël"), ("Hélène", "Chloé", "Léa", "Amélie"),
           ("Lefèvre", "Dubois", "Girard", "Bélanger", "Moreau")),
    "it": (("Niccolò", "Luca", "Matteo", "Andrea"), ("Giulia", "Chiara", "Francesca"),
           ("Rossi", "Bianchi", "Esposito", "Colombo", "D'Angelo")),
    "pt": (("João", "Gonçalo", "Tiago"), ("Conceição", "Inês", "Beatriz"),
           ("Gonçalves", "Ferreira", "Simões", "Magalhães")),
    "es": (("Íñigo", "José", "Álvaro"), ("María", "Lucía", "Begoña"),
           ("García", "Núñez", "Martínez", "Peña")),
    "pl": (("Łukasz", "Paweł", "Wojciech"), ("Małgorzata", "Agnieszka", "Zuzanna"),
           ("Wiśniewski", "Kowalczyk", "Wójcik", "Żak")),
    "sh": (("Luka", "Miloš", "Dragan", "Nikola"), ("Ivana", "Dragana", "Jelena", "Maja"),
           ("Horvat", "Kovačić", "Jovanović", "Petrović", "Hadžić")),
    "sq": (("Arbër", "Besnik", "Dardan", "Valon"), ("Ardita", "Blerta", "Drita", "Fjolla"),
           ("Berisha", "Krasniqi", "Gashi", "Shala", "Hoxha")),
    "tr": (("Gökhan", "Emre", "Çağan"), ("Çağla", "Elif", "Şeyma"),
           ("Yılmaz", "Öztürk", "Kaya", "Çelik", "Doğan")),  # noqa: RUF001 (Turkish dotless i)
    "uk": (("Oleksandr", "Andrii", "Dmytro"), ("Olena", "Kateryna", "Iryna"),
           ("Shevchenko", "Kovalenko", "Bondarenko", "Tkachenko")),
    "fa": (("Ahmad", "Mohammad", "Farid"), ("Zahra", "Mariam", "Fatima"),
           ("Ahmadi", "Rahimi", "Haidari", "Noori")),
    "ti": (("Yonas", "Tesfay", "Filmon"), ("Helen", "Semhar", "Luwam"),
           ("Tesfamariam", "Habte", "Kidane", "Gebremedhin")),
    "ar": (("Omar", "Karim", "Rami"), ("Layla", "Nour", "Rania"),
           ("Haddad", "Khoury", "Al-Hassan", "Nassar")),
    "ta": (("Tharshan", "Kajan"), ("Thushanthi", "Nivetha"),
           ("Sivakumar", "Tharmalingam", "Rajendran")),
}  # fmt: skip

#: eCH-0011 religion codes: reformed, Roman Catholic, Christ Catholic, Jewish, none.
RELIGIONS = ("111", "121", "122", "211", "711")

JOBS = ("Pflegefachfrau", "Informatiker", "Koch", "Maurer", "Reinigungskraft",
        "Ingénieure civile", "Chauffeur", "Studentin", "Cameriere", "Logistiker")  # fmt: skip
EMPLOYERS = ("Spital Bern AG", "Migros-Genossenschafts-Bund", "Coop Genossenschaft",
             "Nestlé Suisse SA", "ABB Schweiz AG", "Implenia Schweiz AG", "SBB AG",
             "Université de Lausanne", "Ristorante Al Porto SA")  # fmt: skip

#: Document title and kind.
DOCUMENTS = (("Ausweiskopie", "Ausweis"), ("Mietvertrag", "Vertrag"),
             ("Arbeitsvertrag", "Vertrag"), ("Geburtsurkunde", "Zivilstandsdokument"),
             ("Eheschein", "Zivilstandsdokument"), ("Verpflichtungserklärung", "Erklärung"),
             ("Gesuch um Verlängerung", "Gesuch"), ("Passkopie", "Ausweis"))  # fmt: skip

COMMENTS = ("Bitte um Prüfung der Verlängerung.", "Unterlagen folgen per Post.",
            "Person ist per Ende Monat weggezogen.", "Rückfrage zur Adresse: bitte bestätigen.",
            "Demande de prolongation déposée au guichet.", "Gebühr bezahlt, Gesuch vollständig.",
            "Familiennachzug: Ehefrau und zwei Kinder folgen im Sommer.")  # fmt: skip

#: Reasons a canton gives in an eventReport (sample values; the official list is unknown).
REASONS = ((1001, "Person im ZEMIS nicht gefunden"), (1002, "Angaben unvollständig"),
           (1003, "Aufenthaltsbewilligung nicht plausibel"), (2001, "Dokument fehlt"),
           (2002, "Dokument nicht lesbar"), (3001, "Zuständigkeit: andere Gemeinde"),
           (9999, "Übriges"))  # fmt: skip
NOTICES = ("Bitte Passkopie nachreichen.", "Die Person ist bereits im Kanton Bern gemeldet.",
           "Merci de compléter l'adresse.")  # fmt: skip
