#!/usr/bin/env python3
"""Build a small Chinook database: the public sample's schema (Chinook_Sqlite.sql, version 1.4:
eleven tables with bracketed names, named primary keys, NVARCHAR/NUMERIC(10,2)/DATETIME columns,
foreign keys and their IFK_ indexes), filled with a few generated rows.

Usage::

    python samples/make_chinook.py OUT.db [--force]

The rows are made here, not copied: the same call always gives the same file.
"""

from __future__ import annotations

import random
import sqlite3
import sys
from contextlib import closing
from pathlib import Path

from sample_cli import build_main  # samples/, beside this script

SCHEMA = """
CREATE TABLE [Album]
(
    [AlbumId] INTEGER  NOT NULL,
    [Title] NVARCHAR(160)  NOT NULL,
    [ArtistId] INTEGER  NOT NULL,
    CONSTRAINT [PK_Album] PRIMARY KEY  ([AlbumId]),
    FOREIGN KEY ([ArtistId]) REFERENCES [Artist] ([ArtistId])
        ON DELETE NO ACTION ON UPDATE NO ACTION
);
CREATE TABLE [Artist]
(
    [ArtistId] INTEGER  NOT NULL,
    [Name] NVARCHAR(120),
    CONSTRAINT [PK_Artist] PRIMARY KEY  ([ArtistId])
);
CREATE TABLE [Customer]
(
    [CustomerId] INTEGER  NOT NULL,
    [FirstName] NVARCHAR(40)  NOT NULL,
    [LastName] NVARCHAR(20)  NOT NULL,
    [Company] NVARCHAR(80),
    [Address] NVARCHAR(70),
    [City] NVARCHAR(40),
    [State] NVARCHAR(40),
    [Country] NVARCHAR(40),
    [PostalCode] NVARCHAR(10),
    [Phone] NVARCHAR(24),
    [Fax] NVARCHAR(24),
    [Email] NVARCHAR(60)  NOT NULL,
    [SupportRepId] INTEGER,
    CONSTRAINT [PK_Customer] PRIMARY KEY  ([CustomerId]),
    FOREIGN KEY ([SupportRepId]) REFERENCES [Employee] ([EmployeeId])
        ON DELETE NO ACTION ON UPDATE NO ACTION
);
CREATE TABLE [Employee]
(
    [EmployeeId] INTEGER  NOT NULL,
    [LastName] NVARCHAR(20)  NOT NULL,
    [FirstName] NVARCHAR(20)  NOT NULL,
    [Title] NVARCHAR(30),
    [ReportsTo] INTEGER,
    [BirthDate] DATETIME,
    [HireDate] DATETIME,
    [Address] NVARCHAR(70),
    [City] NVARCHAR(40),
    [State] NVARCHAR(40),
    [Country] NVARCHAR(40),
    [PostalCode] NVARCHAR(10),
    [Phone] NVARCHAR(24),
    [Fax] NVARCHAR(24),
    [Email] NVARCHAR(60),
    CONSTRAINT [PK_Employee] PRIMARY KEY  ([EmployeeId]),
    FOREIGN KEY ([ReportsTo]) REFERENCES [Employee] ([EmployeeId])
        ON DELETE NO ACTION ON UPDATE NO ACTION
);
CREATE TABLE [Genre]
(
    [GenreId] INTEGER  NOT NULL,
    [Name] NVARCHAR(120),
    CONSTRAINT [PK_Genre] PRIMARY KEY  ([GenreId])
);
CREATE TABLE [Invoice]
(
    [InvoiceId] INTEGER  NOT NULL,
    [CustomerId] INTEGER  NOT NULL,
    [InvoiceDate] DATETIME  NOT NULL,
    [BillingAddress] NVARCHAR(70),
    [BillingCity] NVARCHAR(40),
    [BillingState] NVARCHAR(40),
    [BillingCountry] NVARCHAR(40),
    [BillingPostalCode] NVARCHAR(10),
    [Total] NUMERIC(10,2)  NOT NULL,
    CONSTRAINT [PK_Invoice] PRIMARY KEY  ([InvoiceId]),
    FOREIGN KEY ([CustomerId]) REFERENCES [Customer] ([CustomerId])
        ON DELETE NO ACTION ON UPDATE NO ACTION
);
CREATE TABLE [InvoiceLine]
(
    [InvoiceLineId] INTEGER  NOT NULL,
    [InvoiceId] INTEGER  NOT NULL,
    [TrackId] INTEGER  NOT NULL,
    [UnitPrice] NUMERIC(10,2)  NOT NULL,
    [Quantity] INTEGER  NOT NULL,
    CONSTRAINT [PK_InvoiceLine] PRIMARY KEY  ([InvoiceLineId]),
    FOREIGN KEY ([InvoiceId]) REFERENCES [Invoice] ([InvoiceId])
        ON DELETE NO ACTION ON UPDATE NO ACTION,
    FOREIGN KEY ([TrackId]) REFERENCES [Track] ([TrackId])
        ON DELETE NO ACTION ON UPDATE NO ACTION
);
CREATE TABLE [MediaType]
(
    [MediaTypeId] INTEGER  NOT NULL,
    [Name] NVARCHAR(120),
    CONSTRAINT [PK_MediaType] PRIMARY KEY  ([MediaTypeId])
);
CREATE TABLE [Playlist]
(
    [PlaylistId] INTEGER  NOT NULL,
    [Name] NVARCHAR(120),
    CONSTRAINT [PK_Playlist] PRIMARY KEY  ([PlaylistId])
);
CREATE TABLE [PlaylistTrack]
(
    [PlaylistId] INTEGER  NOT NULL,
    [TrackId] INTEGER  NOT NULL,
    CONSTRAINT [PK_PlaylistTrack] PRIMARY KEY  ([PlaylistId], [TrackId]),
    FOREIGN KEY ([PlaylistId]) REFERENCES [Playlist] ([PlaylistId])
        ON DELETE NO ACTION ON UPDATE NO ACTION,
    FOREIGN KEY ([TrackId]) REFERENCES [Track] ([TrackId])
        ON DELETE NO ACTION ON UPDATE NO ACTION
);
CREATE TABLE [Track]
(
    [TrackId] INTEGER  NOT NULL,
    [Name] NVARCHAR(200)  NOT NULL,
    [AlbumId] INTEGER,
    [MediaTypeId] INTEGER  NOT NULL,
    [GenreId] INTEGER,
    [Composer] NVARCHAR(220),
    [Milliseconds] INTEGER  NOT NULL,
    [Bytes] INTEGER,
    [UnitPrice] NUMERIC(10,2)  NOT NULL,
    CONSTRAINT [PK_Track] PRIMARY KEY  ([TrackId]),
    FOREIGN KEY ([AlbumId]) REFERENCES [Album] ([AlbumId])
        ON DELETE NO ACTION ON UPDATE NO ACTION,
    FOREIGN KEY ([GenreId]) REFERENCES [Genre] ([GenreId])
        ON DELETE NO ACTION ON UPDATE NO ACTION,
    FOREIGN KEY ([MediaTypeId]) REFERENCES [MediaType] ([MediaTypeId])
        ON DELETE NO ACTION ON UPDATE NO ACTION
);
CREATE INDEX [IFK_AlbumArtistId] ON [Album] ([ArtistId]);
CREATE INDEX [IFK_CustomerSupportRepId] ON [Customer] ([SupportRepId]);
CREATE INDEX [IFK_EmployeeReportsTo] ON [Employee] ([ReportsTo]);
CREATE INDEX [IFK_InvoiceCustomerId] ON [Invoice] ([CustomerId]);
CREATE INDEX [IFK_InvoiceLineInvoiceId] ON [InvoiceLine] ([InvoiceId]);
CREATE INDEX [IFK_InvoiceLineTrackId] ON [InvoiceLine] ([TrackId]);
CREATE INDEX [IFK_PlaylistTrackTrackId] ON [PlaylistTrack] ([TrackId]);
CREATE INDEX [IFK_TrackAlbumId] ON [Track] ([AlbumId]);
CREATE INDEX [IFK_TrackGenreId] ON [Track] ([GenreId]);
CREATE INDEX [IFK_TrackMediaTypeId] ON [Track] ([MediaTypeId]);
"""

WORDS = [
    "Blue",
    "Night",
    "Road",
    "River",
    "Stone",
    "Fire",
    "Glass",
    "Echo",
    "Summer",
    "Velvet",
    "Iron",
    "Golden",
    "Paper",
    "Silent",
    "Wild",
]


def build_chinook(path: str | Path, seed: int = 1) -> None:
    """Write the database to `path` (which must not exist)."""
    pick = random.Random(seed)
    with closing(sqlite3.connect(path)) as con:
        con.executescript(SCHEMA)

        def title(n: int) -> str:
            return " ".join(pick.choice(WORDS) for _ in range(n))

        con.executemany("INSERT INTO Artist VALUES (?, ?)", [(i, title(2)) for i in range(1, 11)])
        con.executemany(
            "INSERT INTO Genre VALUES (?, ?)", [(i, g) for i, g in enumerate(["Rock", "Jazz", "Latin"], 1)]
        )
        con.executemany(
            "INSERT INTO MediaType VALUES (?, ?)",
            [(1, "MPEG audio file"), (2, "Protected AAC audio file")],
        )
        con.executemany(
            "INSERT INTO Album VALUES (?, ?, ?)", [(i, title(3), 1 + i % 10) for i in range(1, 21)]
        )
        tracks = [
            (
                i,
                title(2),
                1 + i % 20 if i % 17 else None,  # a few tracks belong to no album, as in Chinook
                1 + i % 2,
                1 + i % 3,
                title(2) if i % 3 else None,
                pick.randint(60_000, 600_000),
                pick.randint(1_000_000, 12_000_000),
                "0.99" if i % 5 else "1.99",
            )
            for i in range(1, 81)
        ]
        con.executemany("INSERT INTO Track VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", tracks)
        con.executemany(
            "INSERT INTO Employee VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    1,
                    "Adams",
                    "Andrew",
                    "General Manager",
                    None,
                    "1962-02-18 00:00:00",
                    "2002-08-14 00:00:00",
                    "11120 Jasper Ave NW",
                    "Edmonton",
                    "AB",
                    "Canada",
                    "T5K 2N1",
                    "+1 (780) 428-9482",
                    None,
                    "andrew@chinookcorp.com",
                ),
                (
                    2,
                    "Edwards",
                    "Nancy",
                    "Sales Manager",
                    1,
                    "1958-12-08 00:00:00",
                    "2002-05-01 00:00:00",
                    "825 8 Ave SW",
                    "Calgary",
                    "AB",
                    "Canada",
                    "T2P 2T3",
                    "+1 (403) 262-3443",
                    None,
                    "nancy@chinookcorp.com",
                ),
                (
                    3,
                    "Peacock",
                    "Jane",
                    "Sales Support Agent",
                    2,
                    "1973-08-29 00:00:00",
                    "2002-04-01 00:00:00",
                    "1111 6 Ave SW",
                    "Calgary",
                    "AB",
                    "Canada",
                    "T2P 5M5",
                    "+1 (403) 262-3443",
                    None,
                    "jane@chinookcorp.com",
                ),
            ],
        )
        countries = ["Brazil", "Germany", "Canada", "Norway", "Czech Republic", "France"]
        con.executemany(
            "INSERT INTO Customer VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    i,
                    f"First{i}",
                    f"Last{i}",
                    "Embraer" if i % 4 == 0 else None,
                    f"{i} Main St",
                    f"City{i}",
                    None,
                    countries[i % len(countries)],
                    f"{10000 + i}",
                    f"+1 555 {i:04}",
                    None,
                    f"customer{i}@example.com",
                    3 if i % 2 else 2,
                )
                for i in range(1, 16)
            ],
        )
        invoices, lines = [], []
        for i in range(1, 31):
            customer = 1 + i % 15
            items = [(pick.randint(1, 80), pick.randint(1, 2)) for _ in range(pick.randint(1, 4))]
            total = 0
            for track, quantity in items:
                price = tracks[track - 1][8]
                total += round(float(price) * 100) * quantity
                lines.append((len(lines) + 1, i, track, price, quantity))
            invoices.append(
                (
                    i,
                    customer,
                    f"2024-{1 + i % 12:02}-{1 + i % 28:02} 00:00:00",
                    f"{customer} Main St",
                    f"City{customer}",
                    None,
                    countries[customer % len(countries)],
                    None,
                    f"{total / 100:.2f}",
                )
            )
        con.executemany("INSERT INTO Invoice VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", invoices)
        con.executemany("INSERT INTO InvoiceLine VALUES (?, ?, ?, ?, ?)", lines)
        con.executemany("INSERT INTO Playlist VALUES (?, ?)", [(1, "Music"), (2, "Grunge"), (3, "Empty")])
        con.executemany(
            "INSERT INTO PlaylistTrack VALUES (?, ?)",
            [(1, t) for t in range(1, 81)] + [(2, t) for t in range(1, 81, 7)],
        )
        con.commit()


def main() -> int:
    return build_main(build_chinook, __doc__ or "")


if __name__ == "__main__":
    sys.exit(main())
