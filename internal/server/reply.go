package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/buildgate/buildgate"
)

// StatusError is an error answered with a status the error codes do not
// name (the Anchore and Harbor APIs' 422 and 501).
type StatusError struct {
	Status int
	Msg    string
}

func (e *StatusError) Error() string { return e.Msg }

// Errorf returns a StatusError with a formatted message.
func Errorf(status int, format string, args ...any) error {
	return &StatusError{Status: status, Msg: fmt.Sprintf(format, args...)}
}

// Reply is the answer to a failed request: its HTTP status, the error code
// (buildgate.ErrorCode's vocabulary) and the message.
type Reply struct {
	Status  int
	Code    string
	Message string
}

// ErrorReply decides the answer to a handler's error, the same way for /v1,
// the Anchore subset and the Harbor adapter: a body cut at its limit is 413
// whatever the handler made of it; an *echo.HTTPError or a *StatusError
// keeps its status and message; any other error answers by its code
// (HTTPStatus), and an internal one is logged. It sets Retry-After on an
// unavailable store and the authentication challenge on 401. unavailable,
// when not nil, first turns an error met while the store does not answer
// into EUNAVAILABLE (Server.Unavailable).
func ErrorReply(c echo.Context, err error, log *slog.Logger, legacyBasic bool, unavailable func(error) error) Reply {
	if unavailable != nil {
		err = unavailable(err)
	}
	r := Reply{Status: HTTPStatus(err), Code: buildgate.ErrorCode(err), Message: buildgate.ErrorMessage(err)}
	var he *echo.HTTPError
	var se *StatusError
	switch tl := BodyTooLarge(c.Request()); {
	case tl != nil:
		r.Status, r.Message = http.StatusRequestEntityTooLarge, tl.Error()
		r.Code = buildgate.EINVALID
	case errors.As(err, &se):
		r.Status, r.Message = se.Status, se.Msg
		r.Code = codeOfStatus(se.Status)
	case errors.As(err, &he):
		r.Status, r.Message = he.Code, http.StatusText(he.Code)
		if m, ok := he.Message.(string); ok {
			r.Message = m
		}
		r.Code = codeOfStatus(he.Code)
	case r.Code == buildgate.EINTERNAL:
		log.Error("internal error", "method", c.Request().Method, "path", c.Request().URL.Path, "err", err)
	}
	if r.Status == http.StatusUnauthorized {
		Challenge(c.Response().Header(), c.Request(), legacyBasic)
	}
	if r.Code == buildgate.EUNAVAILABLE {
		c.Response().Header().Set("Retry-After", "5")
	}
	return r
}

// codeOfStatus names the error code of a status set outside the code
// table.
func codeOfStatus(status int) string {
	switch {
	case status == http.StatusNotFound:
		return buildgate.ENOTFOUND
	case status == http.StatusUnauthorized:
		return buildgate.EUNAUTHORIZED
	case status == http.StatusForbidden:
		return buildgate.EFORBIDDEN
	case status < 500:
		return buildgate.EINVALID
	default:
		return buildgate.EINTERNAL
	}
}
