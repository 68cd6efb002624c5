from django.apps import AppConfig


class NotaryConfig(AppConfig):
    name = "notary"
