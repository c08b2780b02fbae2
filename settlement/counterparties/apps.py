from django.apps import AppConfig


class CounterpartiesConfig(AppConfig):
    name = "settlement.counterparties"
    label = "counterparties"
    verbose_name = "Counterparties and KYC"
