#!/usr/bin/env python3
"""Build a small Northwind-style database: the SQLite port's tables (Categories, Customers,
Employees with a self reference, Orders, "Order Details" with a composite key and a name with a
space, Products, Shippers, Suppliers, Regions, Territories and the many-to-many tables), the
original's named CHECK constraints (CK_Products_UnitPrice, CK_Discount, ...) and defaults, and a
few of its views, filled with generated rows.

Usage::

    python samples/make_northwind.py OUT.db [--force]

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
CREATE TABLE [Categories] (
    [CategoryID] INTEGER PRIMARY KEY AUTOINCREMENT,
    [CategoryName] TEXT NOT NULL,
    [Description] TEXT,
    [Picture] BLOB
);
CREATE INDEX [CategoryName] ON [Categories] ([CategoryName]);
CREATE TABLE [CustomerDemographics] (
    [CustomerTypeID] TEXT NOT NULL PRIMARY KEY,
    [CustomerDesc] TEXT
);
CREATE TABLE [Customers] (
    [CustomerID] TEXT PRIMARY KEY,
    [CompanyName] TEXT NOT NULL,
    [ContactName] TEXT,
    [ContactTitle] TEXT,
    [Address] TEXT,
    [City] TEXT,
    [Region] TEXT,
    [PostalCode] TEXT,
    [Country] TEXT,
    [Phone] TEXT,
    [Fax] TEXT
);
CREATE INDEX [City] ON [Customers] ([City]);
CREATE INDEX [CompanyName] ON [Customers] ([CompanyName]);
CREATE INDEX [PostalCode] ON [Customers] ([PostalCode]);
CREATE TABLE [CustomerCustomerDemo] (
    [CustomerID] TEXT NOT NULL,
    [CustomerTypeID] TEXT NOT NULL,
    PRIMARY KEY ("CustomerID", "CustomerTypeID"),
    FOREIGN KEY ([CustomerID]) REFERENCES [Customers] ([CustomerID])
        ON DELETE NO ACTION ON UPDATE NO ACTION,
    FOREIGN KEY ([CustomerTypeID]) REFERENCES [CustomerDemographics] ([CustomerTypeID])
        ON DELETE NO ACTION ON UPDATE NO ACTION
);
CREATE TABLE [Employees] (
    [EmployeeID] INTEGER PRIMARY KEY AUTOINCREMENT,
    [LastName] TEXT NOT NULL,
    [FirstName] TEXT NOT NULL,
    [Title] TEXT,
    [TitleOfCourtesy] TEXT,
    [BirthDate] DATE,
    [HireDate] DATE,
    [Address] TEXT,
    [City] TEXT,
    [Region] TEXT,
    [PostalCode] TEXT,
    [Country] TEXT,
    [HomePhone] TEXT,
    [Extension] TEXT,
    [Photo] BLOB,
    [Notes] TEXT,
    [ReportsTo] INTEGER,
    [PhotoPath] TEXT,
    CONSTRAINT [CK_HireDate] CHECK (HireDate IS NULL OR HireDate >= BirthDate),
    FOREIGN KEY ([ReportsTo]) REFERENCES [Employees] ([EmployeeID])
        ON DELETE NO ACTION ON UPDATE NO ACTION
);
CREATE INDEX [LastName] ON [Employees] ([LastName]);
CREATE TABLE [Regions] (
    [RegionID] INTEGER NOT NULL PRIMARY KEY,
    [RegionDescription] TEXT NOT NULL
);
CREATE TABLE [Territories] (
    [TerritoryID] TEXT NOT NULL,
    [TerritoryDescription] TEXT NOT NULL,
    [RegionID] INTEGER NOT NULL,
    PRIMARY KEY ([TerritoryID]),
    FOREIGN KEY ([RegionID]) REFERENCES [Regions] ([RegionID])
        ON DELETE NO ACTION ON UPDATE NO ACTION
);
CREATE TABLE [EmployeeTerritories] (
    [EmployeeID] INTEGER NOT NULL,
    [TerritoryID] TEXT NOT NULL,
    PRIMARY KEY ("EmployeeID", "TerritoryID"),
    FOREIGN KEY ([EmployeeID]) REFERENCES [Employees] ([EmployeeID])
        ON DELETE NO ACTION ON UPDATE NO ACTION,
    FOREIGN KEY ([TerritoryID]) REFERENCES [Territories] ([TerritoryID])
        ON DELETE NO ACTION ON UPDATE NO ACTION
);
CREATE TABLE [Shippers] (
    [ShipperID] INTEGER PRIMARY KEY AUTOINCREMENT,
    [CompanyName] TEXT NOT NULL,
    [Phone] TEXT
);
CREATE TABLE [Suppliers] (
    [SupplierID] INTEGER PRIMARY KEY AUTOINCREMENT,
    [CompanyName] TEXT NOT NULL,
    [ContactName] TEXT,
    [ContactTitle] TEXT,
    [Address] TEXT,
    [City] TEXT,
    [Region] TEXT,
    [PostalCode] TEXT,
    [Country] TEXT,
    [Phone] TEXT,
    [Fax] TEXT,
    [HomePage] TEXT
);
CREATE TABLE [Products] (
    [ProductID] INTEGER PRIMARY KEY AUTOINCREMENT,
    [ProductName] TEXT NOT NULL,
    [SupplierID] INTEGER,
    [CategoryID] INTEGER,
    [QuantityPerUnit] TEXT,
    [UnitPrice] NUMERIC DEFAULT 0,
    [UnitsInStock] INTEGER DEFAULT 0,
    [UnitsOnOrder] INTEGER DEFAULT 0,
    [ReorderLevel] INTEGER DEFAULT 0,
    [Discontinued] TEXT NOT NULL DEFAULT '0',
    CONSTRAINT [CK_Products_UnitPrice] CHECK (UnitPrice >= 0),
    CONSTRAINT [CK_UnitsInStock] CHECK (UnitsInStock >= 0),
    CONSTRAINT [CK_UnitsOnOrder] CHECK (UnitsOnOrder >= 0),
    CONSTRAINT [CK_ReorderLevel] CHECK (ReorderLevel >= 0),
    FOREIGN KEY ([CategoryID]) REFERENCES [Categories] ([CategoryID])
        ON DELETE NO ACTION ON UPDATE NO ACTION,
    FOREIGN KEY ([SupplierID]) REFERENCES [Suppliers] ([SupplierID])
        ON DELETE NO ACTION ON UPDATE NO ACTION
);
CREATE INDEX [ProductName] ON [Products] ([ProductName]);
CREATE TABLE [Orders] (
    [OrderID] INTEGER PRIMARY KEY AUTOINCREMENT,
    [CustomerID] TEXT,
    [EmployeeID] INTEGER,
    [OrderDate] DATETIME,
    [RequiredDate] DATETIME,
    [ShippedDate] DATETIME,
    [ShipVia] INTEGER,
    [Freight] NUMERIC DEFAULT 0,
    [ShipName] TEXT,
    [ShipAddress] TEXT,
    [ShipCity] TEXT,
    [ShipRegion] TEXT,
    [ShipPostalCode] TEXT,
    [ShipCountry] TEXT,
    FOREIGN KEY ([EmployeeID]) REFERENCES [Employees] ([EmployeeID])
        ON DELETE NO ACTION ON UPDATE NO ACTION,
    FOREIGN KEY ([CustomerID]) REFERENCES [Customers] ([CustomerID])
        ON DELETE NO ACTION ON UPDATE NO ACTION,
    FOREIGN KEY ([ShipVia]) REFERENCES [Shippers] ([ShipperID])
        ON DELETE NO ACTION ON UPDATE NO ACTION
);
CREATE INDEX [OrderDate] ON [Orders] ([OrderDate]);
CREATE INDEX [ShippedDate] ON [Orders] ([ShippedDate]);
CREATE TABLE [Order Details] (
    [OrderID] INTEGER NOT NULL,
    [ProductID] INTEGER NOT NULL,
    [UnitPrice] NUMERIC NOT NULL DEFAULT 0,
    [Quantity] INTEGER NOT NULL DEFAULT 1,
    [Discount] REAL NOT NULL DEFAULT 0,
    PRIMARY KEY ("OrderID", "ProductID"),
    CONSTRAINT [CK_Discount] CHECK (Discount >= 0 AND Discount <= 1),
    CONSTRAINT [CK_Quantity] CHECK (Quantity > 0),
    CONSTRAINT [CK_UnitPrice] CHECK (UnitPrice >= 0),
    FOREIGN KEY ("OrderID") REFERENCES [Orders] ([OrderID])
        ON DELETE NO ACTION ON UPDATE NO ACTION,
    FOREIGN KEY ("ProductID") REFERENCES [Products] ([ProductID])
        ON DELETE NO ACTION ON UPDATE NO ACTION
);
CREATE VIEW [Alphabetical list of products] AS
SELECT Products.*, Categories.CategoryName
FROM Categories INNER JOIN Products ON Categories.CategoryID = Products.CategoryID
WHERE Products.Discontinued = '0';
CREATE VIEW [Current Product List] AS
SELECT ProductID, ProductName FROM Products WHERE Discontinued = '0';
CREATE VIEW [Customer and Suppliers by City] AS
SELECT City, CompanyName, ContactName, 'Customers' AS Relationship FROM Customers
UNION SELECT City, CompanyName, ContactName, 'Suppliers' FROM Suppliers;
CREATE VIEW [Order Subtotals] AS
SELECT [Order Details].OrderID,
       SUM(([Order Details].UnitPrice * Quantity * (1 - Discount) / 100) * 100) AS Subtotal
FROM [Order Details] GROUP BY [Order Details].OrderID;
CREATE VIEW [Products Above Average Price] AS
SELECT Products.ProductName, Products.UnitPrice FROM Products
WHERE Products.UnitPrice > (SELECT AVG(UnitPrice) FROM Products);
"""


def build_northwind(path: str | Path, seed: int = 1) -> None:
    """Write the database to `path` (which must not exist)."""
    pick = random.Random(seed)
    with closing(sqlite3.connect(path)) as con:
        con.executescript(SCHEMA)
        categories = ["Beverages", "Condiments", "Confections", "Dairy Products", "Seafood"]
        con.executemany(
            "INSERT INTO Categories (CategoryName, Description, Picture) VALUES (?, ?, ?)",
            [(c, f"All {c.lower()}", bytes([0x15, 0x1C, i])) for i, c in enumerate(categories)],
        )
        con.executemany(
            "INSERT INTO Suppliers (CompanyName, City, Country) VALUES (?, ?, ?)",
            [
                ("Exotic Liquids", "London", "UK"),
                ("Tokyo Traders", "Tokyo", "Japan"),
                ("Pavlova, Ltd.", "Melbourne", "Australia"),
            ],
        )
        con.executemany(
            "INSERT INTO Shippers (CompanyName, Phone) VALUES (?, ?)",
            [
                ("Speedy Express", "(503) 555-9831"),
                ("United Package", "(503) 555-3199"),
                ("Federal Shipping", None),
            ],
        )
        con.executemany(
            "INSERT INTO Regions VALUES (?, ?)",
            [(1, "Eastern"), (2, "Western"), (3, "Northern"), (4, "Southern")],
        )
        con.executemany(
            "INSERT INTO Territories VALUES (?, ?, ?)",
            [(f"{1000 + i:05}", f"Territory {i}", 1 + i % 4) for i in range(8)],
        )
        con.executemany(
            "INSERT INTO Employees (LastName, FirstName, Title, BirthDate, HireDate, City, Country, ReportsTo) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    "Fuller",
                    "Andrew",
                    "Vice President, Sales",
                    "1952-02-19",
                    "1992-08-14",
                    "Tacoma",
                    "USA",
                    None,
                ),
                ("Davolio", "Nancy", "Sales Representative", "1948-12-08", "1992-05-01", "Seattle", "USA", 1),
                ("Buchanan", "Steven", "Sales Manager", "1955-03-04", "1993-10-17", "London", "UK", 1),
                ("Suyama", "Michael", "Sales Representative", "1963-07-02", "1993-10-17", "London", "UK", 3),
            ],
        )
        con.executemany(
            "INSERT INTO EmployeeTerritories VALUES (?, ?)", [(1 + i % 4, f"{1000 + i:05}") for i in range(8)]
        )
        customers = [f"C{i:04}" for i in range(12)]
        con.executemany(
            "INSERT INTO Customers (CustomerID, CompanyName, ContactName, City, Country) VALUES (?, ?, ?, ?, ?)",
            [
                (
                    c,
                    f"Company {c}",
                    f"Contact {i}",
                    ["Berlin", "London", "Madrid"][i % 3],
                    ["Germany", "UK", "Spain"][i % 3],
                )
                for i, c in enumerate(customers)
            ],
        )
        con.executemany(
            "INSERT INTO CustomerDemographics VALUES (?, ?)", [("RET", "Retail"), ("WHO", "Wholesale")]
        )
        con.executemany(
            "INSERT INTO CustomerCustomerDemo VALUES (?, ?)", [(customers[0], "RET"), (customers[1], "WHO")]
        )
        products = []
        for i in range(1, 21):
            price = f"{pick.randint(250, 9000) / 100:.2f}"
            products.append(
                (
                    f"Product {i}",
                    1 + i % 3,
                    1 + i % 5,
                    "10 boxes",
                    price,
                    pick.randint(0, 120),
                    0,
                    10,
                    "1" if i % 9 == 0 else "0",
                )
            )
        con.executemany(
            "INSERT INTO Products (ProductName, SupplierID, CategoryID, QuantityPerUnit, UnitPrice, UnitsInStock, "
            "UnitsOnOrder, ReorderLevel, Discontinued) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            products,
        )
        for order in range(1, 41):
            day = f"2016-{1 + order % 12:02}-{1 + order % 28:02} 00:00:00"
            shipped = None if order % 7 == 0 else f"2016-{1 + order % 12:02}-{1 + order % 28:02} 12:00:00"
            con.execute(
                "INSERT INTO Orders (CustomerID, EmployeeID, OrderDate, RequiredDate, ShippedDate, ShipVia, Freight, "
                "ShipName, ShipCity, ShipCountry) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    customers[order % 12],
                    1 + order % 4,
                    day,
                    day,
                    shipped,
                    1 + order % 3,
                    f"{pick.randint(100, 50000) / 100:.2f}",
                    f"Ship {order}",
                    "Berlin",
                    "Germany",
                ),
            )
            for product in sorted(pick.sample(range(1, 21), pick.randint(1, 4))):
                con.execute(
                    'INSERT INTO "Order Details" VALUES (?, ?, ?, ?, ?)',
                    (
                        order,
                        product,
                        products[product - 1][4],
                        pick.randint(1, 30),
                        pick.choice([0, 0.05, 0.1, 0.25]),
                    ),
                )
        con.commit()


def main() -> int:
    return build_main(build_northwind, __doc__ or "")


if __name__ == "__main__":
    sys.exit(main())
