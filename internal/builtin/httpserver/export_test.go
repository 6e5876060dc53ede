package httpserver

// UnavailableMsg is the 503 body, for the tests in package httpserver_test
// (which sit outside this package because they look providers up in the
// built-in table, and that table imports this package).
const UnavailableMsg = unavailableMsg
