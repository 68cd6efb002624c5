from django.apps import AppConfig


class CasefilesConfig(AppConfig):
    name = "casefiles"
