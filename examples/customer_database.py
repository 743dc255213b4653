"""A customer database whose lookups, ages and mock data a model implements.

    python examples/customer_database.py          # on the offline stand-in model
    PROMPTLOG_MODEL=gpt-4o-mini python examples/customer_database.py

``@llm_strategy`` implements every member whose body only raises NotImplementedError:
``Customer.age``, ``find_customer_key`` and the static ``create_mock_customers``;
``load`` has a body of its own and is left alone. Each implemented member is a typed
function, logged with its prompt versions like any prompt.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date

from promptlog import llm_strategy

MODEL = os.environ.get("PROMPTLOG_MODEL", "promptlog/offline")


@llm_strategy(model_name=MODEL)
@dataclass
class Customer:
    key: str
    first_name: str
    last_name: str
    birthdate: date
    address: str

    @property
    def age(self) -> int:
        """Return the current age of the customer from birthdate and the year 2026."""
        raise NotImplementedError()


@dataclass
class CustomerDatabase:
    customers: list[Customer] = field(default_factory=list)

    def find_customer_key(self, query: str) -> list[str]:
        """Find the keys of the customers that match a natural-language query best
        (closest match first): "the customer born in 1990", "someone in Paris"."""
        raise NotImplementedError()

    def load(self) -> None:
        """Load the customers."""
        raise NotImplementedError()

    @staticmethod
    def create_mock_customers(num_customers: int = 1) -> list[Customer]:
        """Create {{ num_customers }} mock customers with believable data (our customers
        are world citizens), each with a unique key."""
        raise NotImplementedError()


@llm_strategy(model_name=MODEL)
@dataclass
class MockCustomerDatabase(CustomerDatabase):
    def load(self) -> None:
        self.customers = self.create_mock_customers(5)


def main() -> None:
    database = MockCustomerDatabase()
    database.load()
    for customer in database.customers:
        print(f"{customer.key}: {customer.first_name} {customer.last_name}, "
              f"born {customer.birthdate}, age {customer.age}, {customer.address}")
    print("Born in the 1990s:", database.find_customer_key("born in the 1990s"))


if __name__ == "__main__":
    main()
