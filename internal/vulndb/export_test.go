package vulndb

// For the tests of package vulndb_test.
var (
	ReadSBOM          = readSBOM
	DecodePackageList = decodePackageList
	PackageID         = packageID
	ProvideSBOM       = provideSBOM
)
