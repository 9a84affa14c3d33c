// admin page
