from django.urls import path

from board import views

app_name = "board"

# Under /groups/<slug>/board/ (supportgroups/urls.py): thread and post numbers count
# within the group and the thread, never across the site.
urlpatterns = [
    path("", views.index, name="index"),
    path("new/", views.new_thread, name="new_thread"),
    path("<int:number>/", views.thread, name="thread"),
    path("<int:number>/reply/", views.reply, name="reply"),
    path("<int:number>/state/", views.thread_state, name="thread_state"),
    path("<int:number>/<int:post_number>/delete/", views.delete_post, name="delete_post"),
]
