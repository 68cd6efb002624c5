"""The casemanager's pages: /dossiers/ and one dossier by its number."""

from django.urls import path

from casefiles import views

app_name = "casefiles"

urlpatterns = [
    path("dossiers/", views.dashboard_page, name="dashboard"),
    path("dossiers/<str:number>/", views.dossier_page, name="dossier"),
    path("dossiers/<str:number>/contact/", views.reveal_contact, name="reveal-contact"),
    path("dossiers/<str:number>/notes/", views.add_note, name="add-note"),
    path("dossiers/<str:number>/close/", views.close, name="close"),
    path("dossiers/<str:number>/trajectories/", views.start_trajectory, name="start-trajectory"),
    path(
        "dossiers/<str:number>/trajectories/<uuid:trajectory_id>/sessions/",
        views.add_session,
        name="add-session",
    ),
    path(
        "dossiers/<str:number>/trajectories/<uuid:trajectory_id>/end/",
        views.end_trajectory,
        name="end-trajectory",
    ),
    path("dossiers/<str:number>/sessions/<uuid:session_id>/held/", views.session_held, name="session-held"),
]
