package ga

// Exported for the tests of package ga_test.
var (
	FastReply  = fastReply
	DecodeRead = decodeRead
	CheckSize  = checkSize
)
